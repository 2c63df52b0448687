"""CURVE keypairs for the learner and actors: ``python -m distrl_jax.transport.keys``.

::

    python -m distrl_jax.transport.keys generate DIR --name learner
    python -m distrl_jax.transport.keys generate DIR --name actor-0
    python -m distrl_jax.transport.keys list DIR

``generate`` writes ``DIR/NAME.key`` (public) and ``DIR/NAME.key_secret`` (mode 0600); an
actor's public key is also copied to ``DIR/authorized/``, the folder the learner admits. Copy
``learner.key`` and an actor's own pair to each actor machine; keep ``learner.key_secret`` on
the learner. See :mod:`distrl_jax.transport.security`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence

import zmq.auth

from distrl_jax.transport.security import AUTHORIZED_DIR, SERVER_NAME

_NAME = re.compile(r"^(learner|actor-[0-9]+)$")


def generate_keypair(keys_dir: str | pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """Create ``name``'s keypair in ``keys_dir``; returns (public file, secret file).

    Refuses to overwrite an existing pair (a learner would lose every actor's trust).
    """
    if not _NAME.match(name):
        raise ValueError(f"key name {name!r}: use 'learner' or 'actor-N' (N a number)")
    folder = pathlib.Path(keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = folder / f"{name}.key", folder / f"{name}.key_secret"
    if public.exists() or secret.exists():
        raise FileExistsError(f"{public} already exists; delete it first to make a new keypair")
    # Written in a private (0700) scratch folder and made 0600 before it is moved into place,
    # so the secret is never readable by others, whatever the umask.
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=".keys-", dir=folder))
    try:
        made_public, made_secret = zmq.auth.create_certificates(scratch, name)
        os.chmod(made_secret, 0o600)
        os.replace(made_secret, secret)
        os.replace(made_public, public)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if name != SERVER_NAME:
        (folder / AUTHORIZED_DIR).mkdir(exist_ok=True)
        shutil.copyfile(public, folder / AUTHORIZED_DIR / public.name)
    return public, secret


def list_keys(keys_dir: str | pathlib.Path) -> list[dict[str, str]]:
    """One row per public key in ``keys_dir``: name, public key (Z85), has_secret, authorized."""
    folder = pathlib.Path(keys_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"no keys folder {folder}")
    rows = []
    for path in sorted(folder.glob("*.key")):
        public, _ = zmq.auth.load_certificate(path)
        name = path.stem
        rows.append(
            {
                "name": name,
                "public": public.decode(),
                "has_secret": str((folder / f"{name}.key_secret").is_file()).lower(),
                "authorized": str((folder / AUTHORIZED_DIR / path.name).is_file()).lower(),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``generate DIR --name NAME`` or ``list DIR``."""
    parser = argparse.ArgumentParser(prog="python -m distrl_jax.transport.keys")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="create a CURVE keypair")
    gen.add_argument("dir")
    gen.add_argument("--name", default=SERVER_NAME, help="learner (default) or actor-N")
    show = commands.add_parser("list", help="list the keys in a folder")
    show.add_argument("dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            public, secret = generate_keypair(args.dir, args.name)
            print(f"wrote {public} and {secret} (mode 0600)")
        else:
            for row in list_keys(args.dir):
                print(
                    f"{row['name']}\t{row['public']}\tsecret={row['has_secret']}"
                    f"\tauthorized={row['authorized']}"
                )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
