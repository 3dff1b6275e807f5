"""Every exception a request can end with becomes one problem, in one place."""

from __future__ import annotations

import psycopg
import pytest
import redis
from psycopg_pool import PoolTimeout

from api.errors import problem_of
from api.problems import Problem, ProblemError, bad_parameter, body


@pytest.mark.parametrize(
    ("exc", "status", "title"),
    [
        (psycopg.OperationalError("connection refused"), 503, "PostgreSQL unavailable"),
        (PoolTimeout("couldn't get a connection after 2.00 sec"), 503, "PostgreSQL unavailable"),
        (
            psycopg.errors.UndefinedTable('relation "lmp" does not exist'),
            503,
            "Read models unavailable",
        ),
        (redis.ConnectionError("Error 111 connecting"), 503, "Redis unavailable"),
        (redis.TimeoutError("Timeout reading"), 503, "Redis unavailable"),
        (KeyError("secret internals"), 500, "Internal error"),
    ],
)
def test_each_exception_answers_as_its_problem(exc: Exception, status: int, title: str) -> None:
    problem = problem_of(exc, "demo")
    assert (problem.status, problem.title) == (status, title)
    if status == 503:
        assert problem.headers == {"Retry-After": "5"}
    if status == 500:
        assert "secret" not in problem.detail  # logged, never told


def test_a_missing_table_names_the_schema_to_migrate() -> None:
    problem = problem_of(psycopg.errors.UndefinedTable('relation "gaps" does not exist'), "demo")
    assert "schema 'demo'" in problem.detail
    assert "optibid db migrate" in problem.detail


def test_a_problem_raised_in_a_route_is_answered_as_raised() -> None:
    raised = bad_parameter("iso", "unknown ISO 'MISO'")
    assert problem_of(raised, "demo") is raised


@pytest.mark.parametrize(
    "problem",
    [
        bad_parameter("limit", "0 is not within 1..50000"),  # with invalid_params
        ProblemError(503, "Redis unavailable", "down", headers={"Retry-After": "5"}),  # without
    ],
)
def test_the_body_sent_is_the_documented_problem(problem: ProblemError) -> None:
    sent = body(problem, "/v1/lmp")
    assert Problem.model_validate(sent).model_dump(exclude_unset=True) == sent
