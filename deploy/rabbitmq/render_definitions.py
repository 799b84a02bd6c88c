"""Fill the password hashes of ``definitions.json`` from the environment; print the result.

The committed ``definitions.json`` holds every user with an empty ``password_hash``
(a user RabbitMQ lets no one log in as). This script reads each user's password
from ``RABBITMQ_PASSWORD_<USER>`` (``admin-cli`` -> ``RABBITMQ_PASSWORD_ADMIN_CLI``)
and writes the definitions with RabbitMQ's salted SHA-256 hashes, so a broker that
imports the result at boot accepts exactly the passwords the services were given.
Only the standard library: it runs in any Python 3 image.

    RABBITMQ_PASSWORD_NOMINATION=... python3 render_definitions.py [-o OUT] [definitions.json]

Exit status 2 names every missing or unusable password (and writes nothing).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
from pathlib import Path

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
MIN_PASSWORD_LENGTH = 16
#: URI-unreserved characters only, so that ``amqp://user:PASSWORD@host/vhost`` needs no escaping.
PASSWORD_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")
DEFAULT_DEFINITIONS = Path(__file__).with_name("definitions.json")


def password_variable(user):
    return "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", user).upper()


def password_hash(password, salt=None):
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode()


def password_problem(variable, password):
    if not password:
        return f"{variable} is not set"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"{variable} must have at least {MIN_PASSWORD_LENGTH} characters"
    if not PASSWORD_PATTERN.fullmatch(password):
        return f"{variable} may hold only A-Z a-z 0-9 . _ ~ - (it goes into AMQP URIs unescaped)"
    return None


def render(definitions, environ):
    """The definitions with every user's hash filled in, or ``ValueError`` listing the problems."""
    problems = []
    for user in definitions["users"]:
        variable = password_variable(user["name"])
        password = environ.get(variable, "")
        problem = password_problem(variable, password)
        if problem:
            problems.append(problem)
            continue
        user["password_hash"] = password_hash(password)
        user["hashing_algorithm"] = HASHING_ALGORITHM
    if problems:
        raise ValueError("; ".join(problems))
    return definitions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("definitions", nargs="?", default=str(DEFAULT_DEFINITIONS))
    parser.add_argument("-o", "--output", help="file to write (mode 0644); default: stdout")
    args = parser.parse_args(argv)
    definitions = json.loads(Path(args.definitions).read_text(encoding="utf-8"))
    try:
        rendered = json.dumps(render(definitions, os.environ), indent=2) + "\n"
    except ValueError as exc:
        print(f"render_definitions: {exc}", file=sys.stderr)
        return 2
    if args.output:
        out = Path(args.output)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(rendered, encoding="utf-8")
        tmp.chmod(0o644)  # the broker runs as another user; these are salted hashes, not passwords
        tmp.replace(out)
    else:
        sys.stdout.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
