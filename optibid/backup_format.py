"""The backup format: encrypted Avro container files and their manifest.

A backup is a folder `<backup id>/` holding `manifest.json` and `segments/`. Each segment is
one topic partition's records in offset order (at most SEGMENT_RECORDS of them), written as an
Avro object container file (the record schema `BACKED_UP_RECORD` below: offset, timestamp,
key, value and headers exactly as the broker kept them), then sealed with AES-256-GCM.

Keys are envelope keys, as a KMS would hand them out: every backup has a fresh 256-bit data
key that seals its segments, and the manifest keeps that data key wrapped (AES-GCM) under the
master key named by `key_id`. The master key comes from the settings (OPTIBID_BACKUP_KEY,
base64) or a key file (OPTIBID_BACKUP_KEY_FILE, JSON `{"key_id": ..., "key": base64}`), so
rotating the master key needs only the manifests re-wrapped, never the segments.

Every sealed file is `nonce (12 bytes) || ciphertext+tag`, its associated data the backup id
and the file's name, so a segment cannot be swapped for another one's undetected. The
manifest lists each segment's SHA-256 (of the sealed bytes: checked before decrypting) and is
itself authenticated: `mac` is an HMAC-SHA256 of its canonical JSON under a key derived from
the data key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = 1
KEY_BYTES = 32
NONCE_BYTES = 12
SEGMENT_RECORDS = 50_000  # records per segment at most
BUFFERED_RECORDS = 200_000  # records waiting to be sealed, all partitions together

BACKED_UP_RECORD: dict[str, Any] = {
    "type": "record",
    "name": "BackedUpRecord",
    "namespace": "energy.optibid.backup",
    "doc": "One Kafka record as the broker kept it (value bytes untouched, schema id included).",
    "fields": [
        {"name": "offset", "type": "long"},
        {"name": "timestamp_ms", "type": "long"},
        {"name": "key", "type": ["null", "bytes"]},
        {"name": "value", "type": ["null", "bytes"]},
        {
            "name": "headers",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Header",
                    "fields": [
                        {"name": "key", "type": "string"},
                        {"name": "value", "type": ["null", "bytes"]},
                    ],
                },
            },
        },
    ],
}
_PARSED = fastavro.parse_schema(BACKED_UP_RECORD)


class BackupError(Exception):
    """A backup that cannot be made, read or restored; the message says what and where."""


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    key: bytes

    @classmethod
    def from_text(cls, text: str, key_id: str = "settings") -> MasterKey:
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            raise BackupError(f"backup key {key_id!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise BackupError(f"backup key {key_id!r} has {len(key)} bytes; it needs {KEY_BYTES}")
        return cls(key_id, key)

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        try:
            body = json.loads(path.read_text())
            return cls.from_text(str(body["key"]), str(body["key_id"]))
        except FileNotFoundError:
            raise BackupError(f"backup key file {path} does not exist") from None
        except (ValueError, KeyError, TypeError):
            raise BackupError(
                f'backup key file {path} is not JSON {{"key_id": ..., "key": base64}}'
            ) from None


def new_key_file(path: Path) -> MasterKey:
    """Write a new master key file readable by its owner only; refuses to overwrite one."""
    key = MasterKey(f"optibid-backup-{secrets.token_hex(4)}", secrets.token_bytes(KEY_BYTES))
    body = json.dumps({"key_id": key.key_id, "key": base64.b64encode(key.key).decode()})
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} exists: a key file is never overwritten") from None
    with os.fdopen(fd, "w") as out:
        out.write(body + "\n")
    return key


def seal(key: bytes, plain: bytes, associated: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plain, associated.encode())


def unseal(key: bytes, sealed: bytes, associated: str) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated.encode())
    except (InvalidTag, ValueError):
        raise BackupError(
            f"{associated}: does not decrypt (wrong key, or the file was altered)"
        ) from None


def wrap_key(master: MasterKey, data_key: bytes, backup_id: str) -> str:
    return base64.b64encode(seal(master.key, data_key, f"data-key/{backup_id}")).decode()


def unwrap_key(master: MasterKey, manifest: dict[str, Any]) -> bytes:
    if manifest.get("key_id") != master.key_id:
        raise BackupError(
            f"backup {manifest.get('backup_id')} was sealed under key {manifest.get('key_id')!r};"
            f" the key given is {master.key_id!r}"
        )
    return unseal(
        master.key, base64.b64decode(manifest["wrapped_key"]), f"data-key/{manifest['backup_id']}"
    )


def _mac_key(data_key: bytes) -> bytes:
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"optibid-backup-manifest")
    return hkdf.derive(data_key)


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_manifest(manifest: dict[str, Any], data_key: bytes) -> dict[str, Any]:
    mac = hmac.new(_mac_key(data_key), _canonical(manifest), hashlib.sha256).hexdigest()
    return {**manifest, "mac": mac}


def check_manifest(manifest: dict[str, Any], data_key: bytes) -> None:
    want = hmac.new(_mac_key(data_key), _canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, str(manifest.get("mac", ""))):
        raise BackupError(f"manifest of backup {manifest.get('backup_id')} was altered")


def encode_segment(records: Iterable[dict[str, Any]], metadata: dict[str, str]) -> bytes:
    """An Avro container file of BackedUpRecord records (deflate-compressed blocks)."""
    out = io.BytesIO()
    fastavro.writer(out, _PARSED, records, codec="deflate", metadata=metadata)
    return out.getvalue()


def decode_segment(data: bytes) -> Iterator[dict[str, Any]]:
    for record in fastavro.reader(io.BytesIO(data)):
        assert isinstance(record, dict)
        yield record


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
