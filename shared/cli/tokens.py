"""``pingxuan token issue`` / ``revoke`` / ``keygen``: tokens are signed here, verified by every service."""
import os
from datetime import timedelta

from shared import auth, events
from shared import signing
from shared.cli.base import CliError, amqp_uri, issuer_key, write_private_key
from shared.cli.system import SERVICES, http_address


def cmd_token_issue(args):
    if args.sign_in_link and args.role != "admin":
        raise CliError("--sign-in-link is only for --role admin (the console signs in admins)")
    try:
        token, token_id = auth.issue_token(issuer_key(create=True), args.role, args.name, args.unit,
                                           ttl=timedelta(days=args.ttl_days))
    except ValueError as exc:
        raise CliError(str(exc))
    print(f"token id {token_id}: role {args.role}, name {args.name}"
          + (f", unit {args.unit}" if args.unit else "") + f", valid {args.ttl_days} days")
    if args.sign_in_link:
        print(sign_in_link(token))
    print(token)


def sign_in_link(token):
    """A one-time console sign-in link (10 minutes): its code is after "#", which browsers
    never send to a server, so it reaches no access log."""
    from services.console.sessions import sign_in_code
    from shared.timeutil import utcnow

    base = os.environ.get("CONSOLE_URL") or f"http://{http_address('console')}"
    return (f"sign-in link (once, within 10 minutes): "
            f"{base.rstrip('/')}/sign-in/link#"
            f"{sign_in_code(issuer_key(), token, utcnow())}")


def cmd_token_revoke(args):
    token_id = args.token_id
    if args.token:
        try:
            token_id = auth.token_id_of(args.token)
        except ValueError as exc:
            raise CliError(str(exc))
    if not token_id:
        raise CliError("give the token or --id TOKEN_ID")
    publish_revocation(token_id)
    print(f"token {token_id} revoked")


def cmd_token_keygen(args):
    """A new issuer key for a rollover (README "Security"): the file stays with the operator."""
    try:
        public = write_private_key(args.output)
    except FileExistsError:
        raise CliError(f"{args.output} exists: a key is never overwritten")
    print(f"private key written to {args.output} (mode 600); key id {signing.key_id(public)}")
    print(public)


def publish_revocation(token_id):
    """Announce a revocation; every service's queue is declared first so none misses it."""
    from kombu import Connection, Queue
    from nameko.standalone.events import event_dispatcher, get_event_exchange

    config = {"AMQP_URI": amqp_uri()}
    exchange = get_event_exchange(events.ADMIN, config)
    with Connection(amqp_uri()) as connection:
        channel = connection.default_channel
        exchange(channel).declare()
        for name in SERVICES:
            # The queue nameko's SERVICE_POOL handler ``on_token_revoked`` of ``name`` consumes.
            Queue(f"evt-{events.ADMIN}-{events.TOKEN_REVOKED}--{name}.on_token_revoked",
                  exchange=exchange, routing_key=events.TOKEN_REVOKED, durable=True)(
                channel).declare()
    payload = events.make_event(events.TOKEN_REVOKED, None, token_id=token_id)
    event_dispatcher(config)(events.ADMIN, events.TOKEN_REVOKED, payload)


def register(sub):
    token = sub.add_parser("token", help="tokens").add_subparsers(dest="action", required=True)
    issue = token.add_parser("issue", help="issue a token (printed alone on the last line)")
    issue.add_argument("--role", required=True, choices=auth.ROLES)
    issue.add_argument("--name", required=True)
    issue.add_argument("--unit")
    issue.add_argument("--ttl-days", type=int, default=auth.DEFAULT_TTL_DAYS)
    issue.add_argument("--sign-in-link", action="store_true",
                       help="also print a one-time link that signs in to the console")
    issue.set_defaults(run=cmd_token_issue)
    revoke = token.add_parser("revoke", help="revoke a token everywhere")
    revoke.add_argument("token", nargs="?")
    revoke.add_argument("--id", dest="token_id")
    revoke.set_defaults(run=cmd_token_revoke)
    keygen = token.add_parser("keygen", help="a new issuer key pair; prints the public key last")
    keygen.add_argument("--output", required=True, help="file for the private key (mode 600)")
    keygen.set_defaults(run=cmd_token_keygen)
