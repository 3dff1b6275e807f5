"""The Terraform of ops/terraform, checked without providers (they cannot be downloaded here):
formatted (`fmt -check` by terraform or the OpenTofu of ops/tools/terraform.sh), clean under
checkov run offline, and consistent: every variable has a description and a type, every output a
description, every module call passes what its module declares and requires, and every
`module.X.Y`, `var.X` and `local.X` it uses exists. The modules are read by a small parser of
HCL's native syntax (blocks, attributes, strings, heredocs, comments) below."""

from __future__ import annotations

import bisect
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "ops" / "terraform"
PRODUCTION = TERRAFORM / "envs" / "production"
SCRIPT = ROOT / "ops" / "tools" / "terraform.sh"
# the OpenTofu pin, read from the script that builds it
TOFU_VERSION = re.search(r"^TOFU_VERSION=(v[0-9.]+)$", SCRIPT.read_text(), re.MULTILINE)
CHECKOV = "checkov==3.3.30"
# every module of the layout, and what the production root must hand to Helm
MODULES = {"kms", "vpc", "eks", "msk", "rds", "elasticache", "s3_backups", "iam"}
HELM_OUTPUTS = {
    "kafka_bootstrap_sasl_iam",
    "kafka_bootstrap_sasl_scram",
    "database_host",
    "database_port",
    "database_name",
    "redis_primary_endpoint",
    "redis_port",
    "backup_bucket_name",
    "backup_role_arn",
    "kafka_role_arn",
    "vpc_cidr_block",
}
META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}


# -- a parser of HCL's native syntax, enough for the structure of a configuration ---------------


class HclError(ValueError):
    pass


@dataclass
class Token:
    kind: str  # ident, string, heredoc, number, newline, or the punctuation itself
    text: str  # an ident's name, a string's literal text (interpolations left out)
    line: int


@dataclass
class Block:
    type: str
    labels: list[str]
    line: int
    attributes: dict[str, list[Token]] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def literal(self, name: str) -> str | None:
        """The text of attribute `name` when it is one string (or heredoc), else None."""
        tokens = self.attributes.get(name)
        if tokens and len(tokens) == 1 and tokens[0].kind in ("string", "heredoc"):
            return tokens[0].text
        return None


OPERATORS = ("...", "==", "!=", "<=", ">=", "&&", "||", "=>")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\n")


class Lexer:
    """Tokens of the code outside strings, and `code`: the text with comments and the literal
    parts of strings blanked (interpolations kept), for finding references."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.code = list(text)
        self.tokens: list[Token] = []
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, i: int) -> int:
        return bisect.bisect_right(self.line_starts, i)

    def blank(self, start: int, end: int) -> None:
        for j in range(start, end):
            if self.code[j] != "\n":
                self.code[j] = " "

    def run(self) -> Lexer:
        end = self.lex_code(0, self.tokens, interpolation=False)
        if end != len(self.text):
            raise HclError(f"line {self.line(end)}: unmatched }}")
        return self

    def lex_code(self, i: int, sink: list[Token] | None, *, interpolation: bool) -> int:
        """Lex code from i to the end (or, in an interpolation, to its closing brace: the index
        after it is returned)."""
        text, depth = self.text, 0
        while i < len(text):
            c = text[i]
            if c in " \t\r":
                i += 1
            elif c == "\n":
                if sink is not None:
                    sink.append(Token("newline", "\n", self.line(i)))
                i += 1
            elif c == "#" or text.startswith("//", i):
                end = text.find("\n", i)
                end = len(text) if end < 0 else end
                self.blank(i, end)
                i = end
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise HclError(f"line {self.line(i)}: unterminated comment")
                self.blank(i, end + 2)
                i = end + 2
            elif c == '"':
                start = i
                i, literal = self.lex_string(i + 1)
                if sink is not None:
                    sink.append(Token("string", literal, self.line(start)))
            elif (heredoc := HEREDOC.match(text, i)) is not None:
                start = i
                i, literal = self.lex_heredoc(heredoc)
                if sink is not None:
                    sink.append(Token("heredoc", literal, self.line(start)))
            elif (ident := IDENT.match(text, i)) is not None:
                if sink is not None:
                    sink.append(Token("ident", ident.group(), self.line(i)))
                i = ident.end()
            elif (number := NUMBER.match(text, i)) is not None:
                if sink is not None:
                    sink.append(Token("number", number.group(), self.line(i)))
                i = number.end()
            else:
                op = next((o for o in OPERATORS if text.startswith(o, i)), c)
                if op == "{":
                    depth += 1
                elif op == "}":
                    if interpolation and depth == 0:
                        return i + 1
                    depth -= 1
                if sink is not None:
                    sink.append(Token(op, op, self.line(i)))
                i += len(op)
        if interpolation:
            raise HclError("unterminated interpolation")
        return i

    def template_step(self, i: int, literal: list[str]) -> int:
        """One step through a template from i: an escaped ${ or %{, an interpolation (lexed), or
        one literal character; literal text goes to `literal`, the index after it is returned."""
        text = self.text
        if text.startswith(("$${", "%%{"), i):
            literal.append(text[i + 1 : i + 3])
            self.blank(i, i + 3)
            return i + 3
        if text.startswith(("${", "%{"), i):
            self.blank(i, i + 2)
            after = self.lex_code(i + 2, None, interpolation=True)
            self.blank(after - 1, after)
            return after
        literal.append(text[i])
        self.blank(i, i + 1)
        return i + 1

    def lex_string(self, i: int) -> tuple[int, str]:
        """A quoted string from after its opening quote: the index after its closing one, and
        its literal text."""
        self.blank(i - 1, i)
        literal: list[str] = []
        while i < len(self.text) and self.text[i] != "\n":
            if self.text[i] == "\\":
                literal.append(self.text[i : i + 2])
                self.blank(i, i + 2)
                i += 2
            elif self.text[i] == '"':
                self.blank(i, i + 1)
                return i + 1, "".join(literal)
            else:
                i = self.template_step(i, literal)
        raise HclError(f"line {self.line(i)}: unterminated string")

    def lex_heredoc(self, opening: re.Match[str]) -> tuple[int, str]:
        marker = opening.group(2)
        closing = re.compile(rf"^[ \t]*{re.escape(marker)}[ \t]*$", re.MULTILINE)
        found = closing.search(self.text, opening.end())
        if found is None:
            raise HclError(f"line {self.line(opening.start())}: heredoc {marker} never closed")
        self.blank(opening.start(), opening.end())
        literal: list[str] = []
        i = opening.end()
        while i < found.start():
            i = self.template_step(i, literal)
        self.blank(found.start(), found.end())
        return found.end(), "".join(literal)


class Parser:
    def __init__(self, tokens: list[Token], where: str) -> None:
        self.tokens = tokens
        self.k = 0
        self.where = where

    def fail(self, message: str) -> HclError:
        line = self.tokens[min(self.k, len(self.tokens) - 1)].line if self.tokens else 1
        return HclError(f"{self.where}:{line}: {message}")

    def peek(self, ahead: int = 0) -> Token | None:
        k = self.k + ahead
        return self.tokens[k] if k < len(self.tokens) else None

    def body(self, into: Block, *, closed: bool) -> None:
        while (token := self.peek()) is not None:
            if token.kind == "newline":
                self.k += 1
            elif token.kind == "}" and closed:
                self.k += 1
                return
            elif token.kind == "ident":
                after = self.peek(1)
                if after is not None and after.kind == "=":
                    if token.text in into.attributes:
                        raise self.fail(f"attribute {token.text} set twice")
                    self.k += 2
                    into.attributes[token.text] = self.expression()
                else:
                    into.blocks.append(self.block())
            else:
                raise self.fail(f"unexpected {token.text!r}")
        if closed:
            raise self.fail("block never closed")

    def block(self) -> Block:
        head = self.tokens[self.k]
        self.k += 1
        labels: list[str] = []
        while (token := self.peek()) is not None and token.kind in ("string", "ident"):
            labels.append(token.text)
            self.k += 1
        if token is None or token.kind != "{":
            raise self.fail(f"block {head.text} without a body")
        self.k += 1
        block = Block(head.text, labels, head.line)
        self.body(block, closed=True)
        return block

    def expression(self) -> list[Token]:
        """The tokens of an expression: up to a newline (or a closing brace) outside brackets."""
        tokens: list[Token] = []
        depth = 0
        while (token := self.peek()) is not None:
            if depth == 0 and (token.kind == "newline" or token.kind == "}"):
                break
            if token.kind in ("(", "[", "{"):
                depth += 1
            elif token.kind in (")", "]", "}"):
                depth -= 1
            if token.kind != "newline":
                tokens.append(token)
            self.k += 1
        if not tokens:
            raise self.fail("attribute without a value")
        return tokens


@dataclass
class Module:
    """The .tf files of one folder: their top-level blocks and their code."""

    path: Path
    blocks: list[Block]
    code: str

    def of_type(self, type_: str) -> Iterator[Block]:
        return (b for b in self.blocks if b.type == type_)

    @functools.cached_property
    def variables(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.of_type("variable")}

    @functools.cached_property
    def outputs(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.of_type("output")}

    @functools.cached_property
    def calls(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.of_type("module")}

    @functools.cached_property
    def locals(self) -> set[str]:
        return {name for b in self.of_type("locals") for name in b.attributes}


def parse(text: str, where: str = "<text>") -> tuple[list[Block], str]:
    lexer = Lexer(text).run()
    top = Block("", [], 1)
    Parser(lexer.tokens, where).body(top, closed=False)
    return top.blocks, "".join(lexer.code)


@functools.cache
def load(folder: Path) -> Module:
    blocks: list[Block] = []
    code: list[str] = []
    for file in sorted(folder.glob("*.tf")):
        parsed, file_code = parse(file.read_text(), str(file.relative_to(folder.parent)))
        blocks += parsed
        code.append(file_code)
    return Module(folder, blocks, "\n".join(code))


def folders(tree: Path) -> list[Path]:
    """Every folder of `tree` holding .tf files (a module or a root)."""
    return sorted({f.parent for f in tree.rglob("*.tf") if ".terraform" not in f.parts})


# -- the consistency checks: each returns the problems it finds --------------------------------

MODULE_OUTPUT = re.compile(
    r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.([A-Za-z_][\w-]*))?"
)
VAR = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")


def described(module: Module) -> list[str]:
    problems = []
    for name, block in module.variables.items():
        if not (block.literal("description") or "").strip():
            problems.append(f"{module.path.name}: variable {name} has no description")
        if "type" not in block.attributes:
            problems.append(f"{module.path.name}: variable {name} has no type")
    for name, block in module.outputs.items():
        if not (block.literal("description") or "").strip():
            problems.append(f"{module.path.name}: output {name} has no description")
    return problems


def called_module(module: Module, call: Block) -> Module | None:
    source = call.literal("source") or ""
    target = (module.path / source).resolve()
    if not source.startswith(("./", "../")) or not list(target.glob("*.tf")):
        return None
    return load(target)


def calls_match(module: Module) -> list[str]:
    problems = []
    for name, call in module.calls.items():
        where = f"{module.path.name}: module {name}"
        target = called_module(module, call)
        if target is None:
            problems.append(f"{where}: source {call.literal('source')!r} is no local module")
            continue
        passed = set(call.attributes) - META_ARGUMENTS
        for argument in sorted(passed - set(target.variables)):
            problems.append(f"{where}: passes {argument}, which it does not declare")
        required = {n for n, v in target.variables.items() if "default" not in v.attributes}
        for argument in sorted(required - passed):
            problems.append(f"{where}: does not pass the required {argument}")
    return problems


def references_exist(module: Module) -> list[str]:
    problems = []
    for match in MODULE_OUTPUT.finditer(module.code):
        name, output = match.groups()
        call = module.calls.get(name)
        if call is None:
            problems.append(f"{module.path.name}: module.{name} is not called here")
            continue
        target = called_module(module, call)
        if output is not None and target is not None and output not in target.outputs:
            problems.append(f"{module.path.name}: module.{name}.{output} is no output of it")
    for name in sorted({m.group(1) for m in VAR.finditer(module.code)} - set(module.variables)):
        problems.append(f"{module.path.name}: var.{name} is not declared")
    for name in sorted({m.group(1) for m in LOCAL.finditer(module.code)} - module.locals):
        problems.append(f"{module.path.name}: local.{name} is not defined")
    return problems


def pinned(module: Module) -> list[str]:
    """A terraform block with required_version and the aws provider pinned to a major."""
    settings = list(module.of_type("terraform"))
    if len(settings) != 1:
        return [f"{module.path.name}: {len(settings)} terraform blocks, not 1"]
    problems = []
    if not (settings[0].literal("required_version") or "").startswith(">="):
        problems.append(f"{module.path.name}: no required_version")
    providers = [b for b in settings[0].blocks if b.type == "required_providers"]
    aws = " ".join(t.text for t in providers[0].attributes.get("aws", [])) if providers else ""
    if not re.search(r"hashicorp/aws .*version = ~> [56]\.[0-9]+\b", aws):
        problems.append(f"{module.path.name}: aws provider not pinned to ~> 5.x or 6.x")
    return problems


CHECKS = (described, calls_match, references_exist, pinned)


def problems_of(tree: Path) -> list[str]:
    return [p for folder in folders(tree) for check in CHECKS for p in check(load(folder))]


# -- the real tree -----------------------------------------------------------------------------


def test_the_layout_has_every_module_and_the_production_root() -> None:
    assert {p.name for p in (TERRAFORM / "modules").iterdir() if p.is_dir()} == MODULES
    production = load(PRODUCTION)
    called = {Path(c.literal("source") or "").name for c in production.calls.values()}
    assert called == MODULES - {"kms"}  # the modules make their own keys


def test_variables_and_outputs_are_described_and_typed() -> None:
    modules = [load(folder) for folder in folders(TERRAFORM)]
    assert sum(len(m.variables) for m in modules) > 50  # the parser did find them
    assert [p for m in modules for p in described(m)] == []


def test_module_calls_pass_what_their_modules_declare_and_require() -> None:
    modules = [load(folder) for folder in folders(TERRAFORM)]
    assert sum(len(m.calls) for m in modules) >= 13
    assert [p for m in modules for p in calls_match(m)] == []


def test_references_name_existing_outputs_variables_and_locals() -> None:
    production = load(PRODUCTION)
    assert len(MODULE_OUTPUT.findall(production.code)) > 20
    assert [p for folder in folders(TERRAFORM) for p in references_exist(load(folder))] == []


def test_every_folder_pins_terraform_and_the_aws_provider() -> None:
    assert [p for folder in folders(TERRAFORM) for p in pinned(load(folder))] == []


def test_production_outputs_what_helm_and_the_settings_need() -> None:
    assert set(load(PRODUCTION).outputs) >= HELM_OUTPUTS


def test_timescale_cloud_replaces_rds_in_production() -> None:
    production = load(PRODUCTION)
    assert "default" in production.variables["external_database_host"].attributes
    count = " ".join(t.text for t in production.calls["rds"].attributes["count"])
    assert "use_rds" in count
    assert "external_database_host" in " ".join(
        t.text for t in next(production.of_type("locals")).attributes["use_rds"]
    )


# -- the checks fail where they should -------------------------------------------------------


def write_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


VERSIONS = """terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}
"""
CHILD = """variable "name" {
  description = "A name."
  type        = string
}
variable "size" {
  description = "A size."
  type        = number
  default     = 1
}
output "id" {
  description = "An id."
  value       = var.name
}
"""


def test_a_clean_tree_has_no_problems(tmp_path: Path) -> None:
    tree = write_tree(
        tmp_path,
        {
            "modules/child/main.tf": CHILD + VERSIONS,
            "root/main.tf": VERSIONS
            + 'module "c" {\n  source = "../modules/child"\n  name   = "x"\n}\n'
            + 'output "id" {\n  description = "The id."\n  value       = module.c.id\n}\n',
        },
    )
    assert problems_of(tree) == []


@pytest.mark.parametrize(
    ("child", "root", "problem"),
    [
        (
            CHILD.replace('  description = "A size."\n', ""),
            "",
            "child: variable size has no description",
        ),
        (CHILD.replace("  type        = number\n", ""), "", "child: variable size has no type"),
        (
            CHILD.replace('  description = "An id."\n', '  description = ""\n'),
            "",
            "child: output id has no description",
        ),
        (CHILD, "  colour = 1\n", "root: module c: passes colour, which it does not declare"),
        (
            CHILD.replace("  default     = 1\n", ""),
            "",
            "root: module c: does not pass the required size",
        ),
        (CHILD, "", "root: module.c.arn is no output of it"),
        (CHILD, "", "root: module.d is not called here"),
        (CHILD, "", "root: var.missing is not declared"),
        (CHILD, "", "root: local.missing is not defined"),
        (CHILD.replace("var.name", "var.nmae"), "", "child: var.nmae is not declared"),
    ],
)
def test_the_checks_find_each_problem(tmp_path: Path, child: str, root: str, problem: str) -> None:
    references = {
        "module.c.arn": 'output "arn" {\n  description = "x"\n  value = module.c.arn\n}\n',
        "module.d": 'output "d" {\n  description = "x"\n  value = module.d.id\n}\n',
        "var.missing": 'output "v" {\n  description = "x"\n  value = "${var.missing}-x"\n}\n',
        "local.missing": 'output "l" {\n  description = "x"\n  value = [local.missing]\n}\n',
    }
    extra = next((text for key, text in references.items() if key in problem), "")
    tree = write_tree(
        tmp_path,
        {
            "modules/child/main.tf": child + VERSIONS,
            "root/main.tf": VERSIONS
            + f'module "c" {{\n  source = "../modules/child"\n  name   = "x"\n{root}}}\n'
            + extra,
        },
    )
    assert problem in problems_of(tree)


def test_a_call_of_a_missing_module_and_an_unpinned_provider_are_problems(tmp_path: Path) -> None:
    tree = write_tree(
        tmp_path,
        {
            "root/main.tf": VERSIONS.replace("~> 6.0", ">= 4")
            + 'module "x" {\n  source = "./x"\n}\n'
        },
    )
    assert problems_of(tree) == [
        "root: module x: source './x' is no local module",
        "root: aws provider not pinned to ~> 5.x or 6.x",
    ]


def test_the_parser_keeps_strings_heredocs_and_comments_out_of_the_structure() -> None:
    blocks, code = parse(
        """
# a comment { with a brace, and module.fake.ref
resource "a" "b" { # trailing
  name = "x-${var.y}-{ \\"quoted\\" }-${lookup({ k = "}" }, "k")}"  // var.not_ref
  /* block comment
     module.also_not.ref } */
  policy = <<-EOT
    { "Resource": "${module.m.arn}" } var.in_heredoc_text
  EOT
  nested {
    list = [
      1,
      2,
    ]
  }
  one_line { a = 1 }
}
locals {
  v = "$${literal} %%{literal}"
}
"""
    )
    assert [(b.type, b.labels) for b in blocks] == [("resource", ["a", "b"]), ("locals", [])]
    resource = blocks[0]
    assert set(resource.attributes) == {"name", "policy"}
    assert [b.type for b in resource.blocks] == ["nested", "one_line"]
    assert [t.text for t in resource.blocks[0].attributes["list"]] == ["[", "1", ",", "2", ",", "]"]
    assert resource.blocks[1].attributes["a"][0].text == "1"
    assert blocks[1].literal("v") == "${literal} %{literal}"
    assert (resource.literal("policy") or "").strip() == '{ "Resource": "" } var.in_heredoc_text'
    assert set(VAR.findall(code)) == {"y"}
    assert [m.group(1) for m in MODULE_OUTPUT.finditer(code)] == ["m"]


@pytest.mark.parametrize(
    "text",
    ['a = "open\n', "a = <<EOT\nx\n", "b {\n  a = 1\n", "a = 1\n}\n", "/* open", "= 1\n"],
)
def test_the_parser_rejects_what_is_not_hcl(text: str) -> None:
    with pytest.raises(HclError):
        parse(text)


# -- fmt, by terraform or the pinned OpenTofu ---------------------------------------------------


def cache_home() -> Path:
    """${XDG_CACHE_HOME:-$HOME/.cache}, as ops/tools/terraform.sh reads it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def fmt_binaries() -> list[str]:
    """terraform on PATH, and the OpenTofu build of ops/tools/terraform.sh (or tofu on PATH)."""
    assert TOFU_VERSION is not None
    found = [shutil.which("terraform")]
    tofu = cache_home() / "optibid" / "tofu" / TOFU_VERSION.group(1) / "bin" / "tofu"
    found.append(str(tofu) if os.access(tofu, os.X_OK) else shutil.which("tofu"))
    return [binary for binary in found if binary is not None]


# no CLI configuration file is looked for, and no version check leaves the machine
QUIET = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}


def test_fmt_check_passes() -> None:
    binaries = fmt_binaries()
    if not binaries:
        pytest.fail("neither terraform nor the pinned OpenTofu: run `sh ops/tools/terraform.sh`")
    for binary in binaries:
        done = subprocess.run(
            [binary, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=QUIET,
        )
        assert done.returncode == 0, f"{binary} fmt:\n{done.stdout}{done.stderr}"


def test_fmt_check_fails_on_a_misformatted_file(tmp_path: Path) -> None:
    binaries = fmt_binaries()
    if not binaries:
        pytest.fail("neither terraform nor the pinned OpenTofu: run `sh ops/tools/terraform.sh`")
    (tmp_path / "main.tf").write_text('variable "x" {\ntype = string\n  description="x"\n}\n')
    for binary in binaries:
        done = subprocess.run(
            [binary, "fmt", "-check", "-recursive", "-diff", "-no-color", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=QUIET,
        )
        assert done.returncode != 0, binary
        assert 'description = "x"' in done.stdout, binary


# -- ops/tools/terraform.sh, without building anything ----------------------------------------


def script(tmp_path: Path, *args: str, path: Path) -> subprocess.CompletedProcess[str]:
    sh = shutil.which("sh")
    assert sh is not None
    return subprocess.run(
        [sh, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            "PATH": str(path),
            "HOME": str(tmp_path / "home"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "OPTIBID_GO_ROOT": str(tmp_path / "no-go"),
        },
    )


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH with `ls` alone: no terraform, tofu or go."""
    folder = tmp_path / "bin"
    folder.mkdir()
    ls = shutil.which("ls")
    assert ls is not None
    (folder / "ls").symlink_to(ls)
    return folder


def test_script_check_names_the_missing_build_and_changes_nothing(
    tmp_path: Path, bare_path: Path
) -> None:
    assert TOFU_VERSION is not None
    done = script(tmp_path, "--check", path=bare_path)
    assert (done.returncode, done.stdout) == (0, f"tofu@{TOFU_VERSION.group(1)}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_script_without_go_says_so(tmp_path: Path, bare_path: Path) -> None:
    done = script(tmp_path, path=bare_path)
    assert done.returncode == 1
    assert "Go" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_script_prefers_terraform_on_path_then_the_cached_build(
    tmp_path: Path, bare_path: Path
) -> None:
    assert TOFU_VERSION is not None
    tofu = tmp_path / "cache" / "optibid" / "tofu" / TOFU_VERSION.group(1) / "bin" / "tofu"
    tofu.parent.mkdir(parents=True)
    tofu.write_text("#!/bin/sh\n")
    tofu.chmod(0o755)
    assert script(tmp_path, path=bare_path).stdout.splitlines()[-1] == str(tofu)
    assert script(tmp_path, "--check", path=bare_path).stdout == ""
    terraform = bare_path / "terraform"
    terraform.write_text("#!/bin/sh\n")
    terraform.chmod(0o755)
    assert script(tmp_path, path=bare_path).stdout.splitlines()[-1] == str(terraform)


# -- checkov, offline ---------------------------------------------------------------------------

SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+):(.*)")


@functools.cache
def checkov() -> dict[str, Any]:
    """checkov's report over ops/terraform, run as an isolated tool and offline: --skip-download
    and BC_SKIP_MAPPING keep it from fetching policy metadata, CKV_SKIP_PACKAGE_UPDATE_CHECK
    from asking for a newer release, and without an API key nothing is uploaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_API_KEY", "PRISMA_"))}
    env.update(CKV_SKIP_PACKAGE_UPDATE_CHECK="true", BC_SKIP_MAPPING="TRUE")
    uv = os.environ.get("UV")
    done = subprocess.run(
        [
            *([uv] if uv else ["python3", "-m", "uv"]),
            "tool",
            "run",
            "--from",
            CHECKOV,
            "checkov",
            "--directory",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=ROOT,
    )
    try:  # exit status 1 is failed checks, reported by the tests
        reports = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not run (exit {done.returncode}):\n{done.stderr[-3000:]}")
    # one report per framework that found files: a list of them when more than one did
    report: dict[str, Any] = next(
        r
        for r in (reports if isinstance(reports, list) else [reports])
        if r["check_type"] == "terraform"
    )
    return report


def test_checkov_passes_with_no_failed_check() -> None:
    report = checkov()
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 80  # every module was read
    assert report["summary"]["passed"] > 250


def test_checkov_skips_only_where_the_code_says_why() -> None:
    comments = [
        (match.group(1), match.group(2).strip())
        for file in TERRAFORM.rglob("*.tf")
        for match in SKIP.finditer(file.read_text())
    ]
    assert len(comments) <= 6  # few, each with its reason
    assert all(len(reason) > 30 for _, reason in comments), comments
    skipped = sorted(c["check_id"] for c in checkov()["results"]["skipped_checks"])
    assert skipped == sorted(check for check, _ in comments)  # each skip used, none from elsewhere
