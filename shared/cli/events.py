"""``pingxuan events parked`` / ``events replay``: the events a handler gave up on (shared/handlers.py).

A parked event waits in its service's parking queue until an operator has fixed
the cause and replays it; a replayed event is tried again as if new (and parked
again if it still fails). Handlers apply an event once, so replaying one that
was applied meanwhile changes nothing.
"""
from shared.cli.base import CliError, amqp_uri, print_json
from shared.cli.system import SERVICES

DEFAULT_LIMIT = 1000


def _services(args):
    if args.service and args.service not in SERVICES:
        raise CliError(f"unknown service {args.service!r} (one of {', '.join(SERVICES)})")
    return [args.service] if args.service else list(SERVICES)


def _connection():
    from kombu import Connection

    return Connection(amqp_uri(), transport_options={"confirm_publish": True})


def _broker_errors():
    from kombu.exceptions import OperationalError

    return (OSError, ConnectionError, OperationalError)


def _broker_error(exc):
    return CliError(f"RabbitMQ at the AMQP_URI did not answer: {type(exc).__name__}: {exc}")


def parked(services, limit):
    """Parked events of ``services``, oldest first; the broker keeps every one of them."""
    from shared import handlers

    rows = []
    with _connection() as connection:
        for name in services:
            channel = connection.channel()
            try:
                rows.extend(handlers.parked_record(name, message)
                            for message in handlers.take_parked(channel, name, limit))
            finally:
                channel.close()  # nothing acknowledged: all of them stay parked
    return rows


def replay(services, event_ids, limit):
    """Replay the parked events of ``services`` (only ``event_ids`` when given); their records."""
    from shared import handlers

    done = []
    with _connection() as connection:
        producer = connection.Producer()
        for name in services:
            channel = connection.channel()
            try:
                for message in handlers.take_parked(channel, name, limit):
                    record = handlers.parked_record(name, message)
                    if event_ids and record["event_id"] not in event_ids:
                        continue  # left unacknowledged: it goes back to the parking queue
                    handlers.replay_parked(producer, name, message)
                    done.append(record)
            finally:
                channel.close()
    return done


def _print_rows(rows, empty):
    if not rows:
        print(empty)
    for row in rows:
        print(f"{row['service']}\t{row['handler']}\t{row['event_id']}\t"
              f"tries {row['attempts']}\t{row['parked_at']}\t{row['error']}")


def cmd_events_parked(args):
    try:
        rows = parked(_services(args), args.limit)
    except _broker_errors() as exc:
        raise _broker_error(exc)
    if args.json:
        print_json(rows)
    else:
        _print_rows(rows, "no parked events")


def cmd_events_replay(args):
    if not args.all and not args.event_ids:
        raise CliError("name the events to replay (--event-id ID, repeatable) or give --all")
    try:
        rows = replay(_services(args), set(args.event_ids or ()), args.limit)
    except _broker_errors() as exc:
        raise _broker_error(exc)
    if args.json:
        print_json(rows)
        return
    _print_rows(rows, "no parked event replayed")
    if rows:
        print(f"{len(rows)} event(s) replayed")


def register(sub):
    group = sub.add_parser("events", help="events a handler parked after its last try").\
        add_subparsers(dest="action", required=True)
    listing = group.add_parser("parked", help="list parked events (they stay parked)")
    replaying = group.add_parser("replay", help="put parked events back on their handler's queue")
    for parser in (listing, replaying):
        parser.add_argument("--service", help="only this service's parked events")
        parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                            help=f"at most this many per service (default {DEFAULT_LIMIT})")
        parser.add_argument("--json", action="store_true", help="print JSON")
    replaying.add_argument("--event-id", dest="event_ids", action="append",
                           help="the event to replay (repeatable)")
    replaying.add_argument("--all", action="store_true", help="replay every parked event")
    listing.set_defaults(run=cmd_events_parked)
    replaying.set_defaults(run=cmd_events_replay)
