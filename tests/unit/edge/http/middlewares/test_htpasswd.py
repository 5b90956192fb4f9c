"""htpasswd: users entries and files, and the hashes (MD5-crypt against openssl's output)."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

from proxynow.edge.http.middlewares.htpasswd import (
    check_bcrypt,
    check_fast,
    header_field,
    load_users,
    md5_crypt,
)

# `openssl passwd -apr1 -salt SALT PASSWORD` and `openssl passwd -1 -salt SALT PASSWORD`.
VECTORS = [
    (b"password", b"$apr1$saltsalt$yAAkm4libquA.ZWLHbSBq/"),
    ("p@ss wörd".encode(), b"$apr1$ab$HDnxNS1M3PPbjU1tC/KIj1"),
    (b"secret", b"$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"),
    (b"", b"$apr1$xyz$Pix4eE3fQHxJjb6LqtyMK1"),
]


@pytest.mark.parametrize(("password", "hashed"), VECTORS)
def test_md5_crypt_matches_openssl(password: bytes, hashed: bytes) -> None:
    magic, salt = hashed.split(b"$")[1], hashed.split(b"$")[2]
    assert md5_crypt(password, salt, b"$" + magic + b"$") == hashed
    assert check_fast(password, hashed)
    assert not check_fast(password + b"x", hashed)


def test_sha1_and_unknown_forms() -> None:
    assert check_fast(b"password", b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")
    assert not check_fast(b"Password", b"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")
    assert not check_fast(b"password", b"password")  # plain text never matches
    assert not check_fast(b"password", b"$apr1$broken")


def test_bcrypt_every_prefix() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4))
    for prefix in (b"$2a$", b"$2b$", b"$2x$", b"$2y$"):
        assert check_bcrypt(b"pw", prefix + hashed[4:])
    assert not check_bcrypt(b"no", hashed)
    assert not check_bcrypt(b"pw", b"$2y$garbage")
    assert not check_bcrypt(b"x" * 100, hashed)  # bcrypt refuses over 72 bytes: no match


def test_users_file_then_users_the_last_wins(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# comment\n\n  alice:{SHA}a  \nbob:{SHA}b\n")
    users = load_users(["alice:{SHA}c"], str(path), 2)
    assert users == {"alice": "{SHA}c", "bob": "{SHA}b"}
    assert load_users(["u:realm:abc"], "", 3) == {"u:realm": "abc"}


def test_malformed_entries_are_named_without_their_content(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("ok:{SHA}a\nsecret-hash-without-user\n")
    with pytest.raises(ValueError, match="line 2 of usersFile") as raised:
        load_users([], str(path), 2)
    assert "secret-hash" not in str(raised.value)
    with pytest.raises(ValueError, match="a users entry"):
        load_users(["a:b:c"], "", 2)
    with pytest.raises(OSError):
        load_users([], str(tmp_path / "missing"), 2)


def test_header_fields_and_user_names_the_request_can_carry() -> None:
    assert header_field("X-User") == b"X-User" and header_field("") == b""
    for bad in ("Content-Length", "Transfer-Encoding", "Bad Name", "X-\r\nY"):
        with pytest.raises(ValueError):
            header_field(bad)
    with pytest.raises(ValueError, match="control character"):
        load_users(["ali\rce:{SHA}x"], "", 2)
