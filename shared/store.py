"""The Mongo dependency: one pymongo code path; mongomock only when the URI asks for it.

Services and tests run the same repository code on either store. A service
refuses to start without ``MONGO_URI``: an unset URI used to mean "in memory",
so a production pod with a missing Secret ran, answered ``/health`` and lost
every vote on its next restart. The embedded store is chosen by writing its
scheme, ``MONGO_URI=mongomock://<name>/`` (``pingxuan up`` and the tests do).

The MongoDB operations the code may use
=======================================

Only what both stores implement alike; :data:`UPDATE_OPERATORS` and
:data:`QUERY_OPERATORS` are checked against the source of every store module
and ``shared/`` by ``tests/unit/test_store_operations.py`` (an operator not
listed here fails it: add it here only with what both stores do with it).

Verbs: ``insert_one``, ``insert_many(ordered=False)`` (a ``BulkWriteError``
lists the duplicate ``_id`` indexes in both), ``find``/``find_one`` with
projection, ``sort``, ``limit``; ``count_documents``; ``update_one``,
``update_many``, ``replace_one``, ``find_one_and_update``, ``delete_one``,
``delete_many``; ``create_index`` (plain, compound, unique); ``drop_database``
in tests; the ``ping`` command (readiness).

Not used, because mongomock lacks them or differs: transactions and sessions,
change streams, aggregation pipelines (also as updates), ``arrayFilters``,
``hint``, collations, TTL indexes (mongomock scans the whole collection for
expired documents on every access; counters are pruned by a sweep instead).

Where the two differ, and how the code stays on the common ground:

* **Lookups.** MongoDB answers a filter on ``_id`` from its index; mongomock
  4.3 reads every document for every query and update (only an insert's
  duplicate check is a dictionary lookup). :func:`connect` gives the embedded
  store the same ``_id`` lookup (:func:`_iter_by_id`), so a verb whose filter
  names ``_id`` (equality or ``$in``) costs the same few reads on both. Any
  other filter still scans in mongomock: the hot paths filter on ``_id`` only.
* **Inserts.** mongomock walks every inserted document generically (a
  datetime patch that rebuilds each dict, key checks, a version parse, two
  locks): about 18 µs per vote document. A plain document (scalars,
  datetimes, flat dicts, a string or integer ``_id``) in a collection
  without unique or TTL indexes gets the same checks and the same stored form
  directly (:func:`_fast_inserts`); anything else, and any duplicate, goes to
  mongomock's own insert, which refuses it in its words.
* **Pages in ``_id`` order.** ``find(filter).sort("_id", 1).limit(n)``, with the
  filter's ``_id`` absent or a range (``$gt``, ``$gte``, ``$lt``, ``$lte``), is a
  walk of MongoDB's ``_id`` index that stops after ``n`` matches; mongomock 4.3
  reads, sorts and copies every matching document and only then cuts ``n``
  (each page of a million votes read the million: a rebuild was quadratic).
  The embedded store keeps its string ``_id``\ s sorted (:func:`_ordered_pages`,
  re-sorted only after a change) and walks them from the range's start,
  applying the whole filter and stopping after ``n`` (same results, same order:
  Python orders ``str`` by code point, MongoDB by UTF-8 bytes, which agree).
* **Unique keys.** A unique secondary index makes mongomock re-read the whole
  collection on every insert; a compound ``_id`` (``campaign|voter|day``) is a
  real unique key in MongoDB and a dictionary key in mongomock. Hot
  collections are keyed by ``_id`` only; unique secondary indexes are kept
  for rare writes (nomination's ``unit``+``client_ref``).
* **Conditional upserts.** ``update_one({_id: k, n: {$lt: cap}}, {$inc:
  {n: 1}}, upsert=True)`` on an existing document that does not match tries
  to insert ``_id: k`` and fails with E11000 in both; MongoDB may also answer
  E11000 when two upserts of a new ``_id`` race. :func:`take` retries once
  without ``upsert`` and only then says "full".
* **Conflicting update paths** (``$set: {a: …}`` with ``$inc: {a.b: …}``, or
  ``$push`` and ``$pull`` of one array): MongoDB refuses the update
  ("conflict at 'a'"), mongomock applies both in turn. The code never names
  one path (or a path and its prefix) twice in one update, and the embedded
  store refuses such an update as MongoDB does (:func:`conflicting_paths`), so
  every test would catch one.
* **``$addToSet`` with ``$each``** and **``$push`` with ``$each``/``$slice``**:
  the same in both for scalar items. ``$addToSet`` of documents compares
  them field by field in order in MongoDB and as Python dicts (order-free) in
  mongomock: it is only used with strings.
* **``$pull`` with a condition document** (``{outbox: {event_id: x}}``): the
  same in both.
* **``$setOnInsert``, ``$unset``, ``$inc`` (negative too)**: the same.
* **Query operators** ``$in``, ``$nin``, ``$eq``, ``$gt``, ``$gte``, ``$lt``, ``$lte``,
  ``$ne``, ``$exists``, ``$or``: the same for strings, numbers and aware
  datetimes (mongomock compares datetimes in Python: every time is stored
  aware, in UTC, so both order them alike; ``tz_aware=True`` on both clients).
* **Document size.** MongoDB refuses a document over 16 MB; mongomock stores
  anything. No array may grow with traffic: every array is bounded by a rule
  (``$slice``, a cap's size, a campaign's categories) or its items are
  documents of their own (votes, claims, counters, ledger entries).
* **Index key size.** MongoDB 4.2+ has no 1,024-byte key limit any more, but
  a key is still compared byte by byte: ``_id`` keys are built from ids that
  the schemas bound (≤ 100 characters each), never from free text.
* **Datetimes** come back aware in UTC from both (``tz_aware=True``);
  mongomock keeps microseconds, MongoDB milliseconds: nothing compares a
  stored time for equality with one computed in Python except after a
  round trip through the store (``put_code`` compares the stored value).
"""
import bisect
import datetime
import threading

import pymongo
from nameko.extensions import DependencyProvider
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared import config as cfg

EMBEDDED_SCHEME = "mongomock://"
DUPLICATE_KEY = 11000

#: The update operators the code uses (see the module's notes for how each behaves).
UPDATE_OPERATORS = frozenset({
    "$set", "$setOnInsert", "$unset", "$inc", "$push", "$each", "$slice", "$pull",
    "$addToSet"})
#: The query operators the code uses.
QUERY_OPERATORS = frozenset({
    "$in", "$nin", "$eq", "$gt", "$gte", "$lt", "$lte", "$ne", "$exists", "$or"})

#: Every array a store module grows (``$push``/``$addToSet``), and what bounds it: an array
#: that grows with traffic belongs in documents of its own (votes, claims, counters, ledger
#: entries, messages are). ``tests/unit/test_store_operations.py`` fails on an array not here.
BOUNDED_ARRAYS = {
    "outbox": "a document's events not yet relayed: each is pulled once published, and the "
              "sweep republishes every few seconds; it holds the changes of one record "
              "(a nomination, a panel, a campaign) while the broker is away, not votes",
    "holders": "nomination's intake cap: at most the cap (the update's condition is that "
               "holders.<cap-1> does not exist); reconciled against the nominations",
    "history": "notification's attempts of one message: $slice to its last HISTORY_LIMIT",
    "waiting": "notification: the events of one nomination waiting for its contact (a "
               "nomination has a handful of events in its life)",
    "vote_events": "aggregation: the last VOTE_EVENTS_KEPT vote_cast event ids ($slice); "
                   "counted votes are documents of their own",
    "late_events": "aggregation: the last LATE_EVENTS_KEPT notes ($slice)",
    "dirty": "aggregation: the categories of one campaign awaiting a recompute ($addToSet)",
    "revisions": "aggregation: one entry per 公示 revision (an admin's act after an "
                 "objection), never per vote or score",
}

_embedded_clients = {}
_embedded_lock = threading.Lock()


class StoreNotConfigured(RuntimeError):
    """The service was started without a store URI."""


NOT_CONFIGURED = (
    "MONGO_URI is not set. Set MONGO_URI=mongodb://host:27017/?replicaSet=… to run on a "
    "MongoDB server (production), or MONGO_URI=mongomock://local/ to run on the embedded "
    "in-memory store, which keeps nothing across a restart (for trying the system and tests).")


def store_uri(config):
    """The configured store URI; :class:`StoreNotConfigured` (saying what to set) when empty.

    An empty URI never falls back to the embedded store: a service that would
    silently keep its data in memory must not start.
    """
    uri = cfg.read(config, cfg.MONGO_URI) or ""
    if not uri:
        raise StoreNotConfigured(NOT_CONFIGURED)
    if not (uri.startswith(EMBEDDED_SCHEME) or uri.startswith("mongodb://")
            or uri.startswith("mongodb+srv://")):
        raise StoreNotConfigured(
            f"MONGO_URI must start with mongodb://, mongodb+srv:// or {EMBEDDED_SCHEME} "
            f"(got {uri.split(':', 1)[0]}:…)")
    return uri


def is_embedded(uri):
    return uri.startswith(EMBEDDED_SCHEME)


def store_kind(uri):
    """What ``/health`` reports: ``embedded`` (in memory, lost on restart) or ``mongodb``."""
    return "embedded" if is_embedded(uri) else "mongodb"


def connect(uri):
    """A client for ``uri``.

    Embedded clients are shared per URI within a process, so two containers of
    one service in a test see one store, as two instances against one MongoDB do.
    """
    if not uri:
        raise StoreNotConfigured(NOT_CONFIGURED)
    if is_embedded(uri):
        import mongomock  # only the embedded mode and the tests need it

        _give_mongomock_an_id_index(mongomock)
        with _embedded_lock:
            client = _embedded_clients.get(uri)
            if client is None:
                client = mongomock.MongoClient(tz_aware=True)
                _embedded_clients[uri] = client
            return client
    return pymongo.MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)


def release(uri, client):
    """Close a real client; embedded clients live as long as the process."""
    if not is_embedded(uri):
        client.close()


def ping(client):
    """Raise unless the store answers (readiness): MongoDB's ``ping`` command.

    mongomock has no ``command``; its ``server_info()`` stands in (it always answers).
    """
    if type(client).__module__.startswith("mongomock"):
        client.server_info()
    else:
        client.admin.command("ping")


# --- the embedded store's _id index ---------------------------------------------------------

def _ids_named(filter):
    """The ``_id`` values a filter restricts to, or ``None`` when it does not (scan then)."""
    if not isinstance(filter, dict) or "_id" not in filter:
        return None
    value = filter["_id"]
    if isinstance(value, dict):
        if set(value) == {"$in"} and isinstance(value["$in"], (list, tuple, set, frozenset)):
            values = list(value["$in"])
        elif set(value) == {"$eq"}:
            values = [value["$eq"]]
        else:
            return None
    else:
        values = [value]
    if not all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in values):
        return None
    return list(dict.fromkeys(values))


def _iter_by_id(original):
    from mongomock.filtering import filter_applies

    def _iter_documents(self, filter):
        ids = _ids_named(filter)
        if ids is None:
            return original(self, filter)
        store = self._store
        # One expiry pass and one read lock for the whole lookup: mongomock's ``store[key]``
        # takes both per key, and raises KeyError for every absent one (most keys of a
        # group's duplicate check), which cost more than the lookups themselves.
        store._remove_expired_documents()
        with store._rwlock.reader():
            documents = store._documents
            found = [documents[key] for key in ids if key in documents]
        # The rest of the filter still decides, exactly as the scan would.
        return (document for document in found if filter_applies(filter, document))

    _iter_documents.pingxuan_id_index = True
    return _iter_documents


# --- the embedded store's inserts ----------------------------------------------------------

#: Values a plain document holds as they are (a datetime is converted, like mongomock does),
#: besides strings and integers, which BSON takes only within bounds (:func:`_plain_scalar`).
_OTHER_SCALARS = frozenset((float, bool, type(None), bytes))
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1


def _encodes(text):
    """Is ``text`` valid UTF-8 once encoded (no lone surrogate), as BSON needs?"""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain_scalar(value):
    """A scalar BSON encodes as it is: a UTF-8 string, a 64-bit integer, a float, a bool,
    ``None``, bytes or a datetime. For these exact types (a subclass, such as bson's ``Code``
    or ``Int64``, may carry more to check) a lone surrogate and an integer beyond 64 bits are
    BSON's only refusals, so a document of them needs no trial encoding."""
    kind = type(value)
    if kind is str:
        return _encodes(value)
    if kind is int:
        return _INT64_MIN <= value <= _INT64_MAX
    return kind in _OTHER_SCALARS or isinstance(value, datetime.datetime)


def _plain_key(key):
    return type(key) is str and "\0" not in key and _encodes(key)


def _plain_value(value):
    """Is ``value`` a plain scalar, or a dict (exactly) of those with plain string keys?"""
    if _plain_scalar(value):
        return True
    if type(value) is dict:
        return all(_plain_key(key) and _plain_scalar(item) for key, item in value.items())
    return False


def _stored_time(value):
    """mongomock's form of a datetime (``patch_datetime_awareness_in_document``): naive UTC,
    milliseconds."""
    millis = (value.microsecond // 1000) * 1000
    if value.tzinfo:
        return (value - value.utcoffset()).replace(tzinfo=None, microsecond=millis)
    return value.replace(microsecond=millis)


def _stored_value(value):
    if isinstance(value, datetime.datetime):
        return _stored_time(value)
    if type(value) is dict:
        return {key: _stored_time(item) if isinstance(item, datetime.datetime) else item
                for key, item in value.items()}
    return value


def _fast_inserts(original):
    """mongomock's insert of one document, for the documents the hot paths write: a dict
    with a string or integer ``_id`` whose values are scalars, datetimes or flat dicts of
    those, in a collection without unique or TTL indexes. The same checks and the same
    stored form as mongomock's (string keys without NUL, no top-level ``$``, BSON-encodable,
    the ``_id`` free, datetimes as naive UTC milliseconds), without its generic walks, its
    trial BSON encoding, its per-insert version parse and its second lock; anything else
    (a value BSON would refuse too) goes to mongomock's own, which refuses it in its words."""

    def plain(data):
        """``data`` is a document this path stores as mongomock would."""
        return (type(data) is dict and type(data.get("_id")) in (str, int)
                and all(_plain_key(key) and not key.startswith("$")
                        and _plain_value(value) for key, value in data.items()))

    def simple(store):
        return not store._ttl_indexes and not any(index.get("unique")
                                                  for index in store.indexes.values())

    def _insert(self, data, session=None, ordered=True):
        if session is not None:
            return original(self, data, session, ordered)
        store = self._store
        if type(data) is list:
            return _insert_all(self, store, data, session, ordered)
        if type(data) is not dict or not simple(store) or not plain(data):
            return original(self, data, session, ordered)
        object_id = data["_id"]
        if object_id in store._documents:  # mongomock's own refuses it, in its words
            return original(self, data, session, ordered)
        store[object_id] = {key: _stored_value(value) for key, value in data.items()}
        return object_id

    def _insert_all(self, store, data, session, ordered):
        """An ``insert_many`` of new plain documents under one write lock (mongomock takes
        it per document); a batch with anything else, a taken ``_id`` among them (the
        write errors are mongomock's own) goes document by document as mongomock's does."""
        ids = [item.get("_id") if type(item) is dict else None for item in data]
        if (not simple(store) or not all(plain(item) for item in data)
                or len(set(ids)) != len(ids) or any(i in store._documents for i in ids)):
            return original(self, data, session, ordered)
        stored = [{key: _stored_value(value) for key, value in item.items()} for item in data]
        index = store.__dict__.get("_pingxuan_sorted_ids")
        with store._rwlock.writer():
            if any(i in store._documents for i in ids):  # taken meanwhile: mongomock decides
                stored = None
            else:
                store._documents.update(zip(ids, stored))
        if stored is None:
            return original(self, data, session, ordered)
        if index is not None and index.documents is store._documents:
            index.added_keys(ids)
        return ids

    _insert.pingxuan_fast_inserts = True
    return _insert


# --- the embedded store's pages in _id order --------------------------------------------------

#: The ``_id`` conditions a page may carry: where in the sorted keys the walk starts and ends.
RANGE_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})


class _SortedIds:
    """One collection's string ``_id``\ s in order, kept beside mongomock's insertion-ordered
    documents: keys added since the last read are merged in at the next read (timsort merges
    the sorted run and the new keys in about one pass); a removal re-sorts once."""

    def __init__(self, documents):
        self.documents = documents  # mongomock's dict; ``drop()`` swaps in a new one
        self.keys = None
        self.added = []
        self.lock = threading.Lock()

    def sorted_keys(self):
        """The keys in order, or ``None`` when some ``_id`` is not a string (then: scan)."""
        with self.lock:
            if self.keys is not None and self.added:
                self.keys += self.added
                self.added = []
                self.keys = self.keys if all(type(k) is str for k in self.keys) else None
                if self.keys is not None:
                    self.keys.sort()
            if self.keys is None:
                keys, self.added = list(self.documents), []
                if not all(type(key) is str for key in keys):
                    return None
                self.keys = sorted(keys)
            return self.keys

    def added_key(self, key):
        with self.lock:
            if self.keys is not None:
                self.added.append(key)

    def added_keys(self, keys):
        with self.lock:
            if self.keys is not None:
                self.added.extend(keys)

    def removed_key(self):
        with self.lock:
            self.keys, self.added = None, []


def _sorted_ids(store):
    index = store.__dict__.get("_pingxuan_sorted_ids")
    if index is None or index.documents is not store._documents:
        index = store._pingxuan_sorted_ids = _SortedIds(store._documents)
    return index


def _tracking_keys(collection_store):
    """``__setitem__``/``__delitem__`` of mongomock's collection store tell the sorted ids."""
    set_item, del_item = collection_store.__setitem__, collection_store.__delitem__

    def __setitem__(self, key, value):
        index = self.__dict__.get("_pingxuan_sorted_ids")
        new = index is not None and key not in self._documents
        set_item(self, key, value)
        if new and index.documents is self._documents:
            index.added_key(key)

    def __delitem__(self, key):
        del_item(self, key)
        index = self.__dict__.get("_pingxuan_sorted_ids")
        if index is not None:
            index.removed_key()

    __setitem__.pingxuan_sorted_ids = True
    return __setitem__, __delitem__


def _id_range(cursor):
    """``(bounds, count)`` when ``cursor`` is a page in ``_id`` order, else ``None``."""
    sort = cursor._sort
    if isinstance(sort, dict):
        sort = list(sort.items())
    if not sort or [tuple(item) for item in sort] != [("_id", 1)] or not cursor._limit:
        return None
    condition = cursor._spec.get("_id") if isinstance(cursor._spec, dict) else None
    if condition is None and "_id" not in (cursor._spec or {}):
        return {}, cursor._skip + abs(cursor._limit)
    if (not isinstance(condition, dict) or not condition or set(condition) - RANGE_OPERATORS
            or not all(type(value) is str for value in condition.values())):
        return None
    return condition, cursor._skip + abs(cursor._limit)


#: Values a page copies as they are (immutable); a datetime gets its UTC zone back.
_PLAIN = (str, int, float, bool, type(None))


def _matcher(spec, filter_applies):
    """``spec`` as a test of one document: plain string equalities compared directly (a page
    walks many documents), anything else, or a field that is not a plain string, by
    mongomock's own ``filter_applies``. The ``_id`` range is the walk's bounds."""
    plain = {name: value for name, value in spec.items()
             if name != "_id" and type(value) is str and not name.startswith("$")
             and "." not in name}
    if len(plain) + ("_id" in spec) != len(spec):
        return lambda document: filter_applies(spec, document)

    def matches(document):
        for name, value in plain.items():
            field = document.get(name)
            if type(field) is not str:
                return filter_applies(spec, document)
            if field != value:
                return False
        return True

    return matches


def _plain_projector(projection, tz_aware, utc):
    """A copier for a projection that names top-level fields to include: it copies a
    document whose named values are immutable (a datetime gets its UTC zone back), and
    answers ``None`` for any other document (mongomock copies that one). ``None`` for any
    other projection."""
    if not isinstance(projection, dict):
        return None
    wanted = [name for name in projection if name != "_id"]
    with_id = projection.get("_id", 1)
    if (not wanted or with_id not in (0, 1) or any(
            projection[name] not in (1, True) or "." in name or name.startswith("$")
            for name in wanted)):
        return None
    with_id = bool(with_id)

    def copy(document):
        copied = {"_id": document["_id"]} if with_id else {}
        for name in wanted:
            if name in document:
                value = document[name]
                if isinstance(value, datetime.datetime):
                    if tz_aware:
                        value = value.replace(tzinfo=utc)
                elif not isinstance(value, _PLAIN):
                    return None
                copied[name] = value
        return copied

    return copy


def _ordered_pages(original):
    from mongomock import helpers
    from mongomock.filtering import filter_applies

    def _compute_results(self, with_limit_and_skip=False):
        # Called once per document a cursor yields: the page is computed once.
        key = (self._factory, self._skip, self._limit)
        cached = self.__dict__.get("_pingxuan_page")
        if with_limit_and_skip and cached is not None and cached[0] == key:
            return cached[1]
        plan = _id_range(self) if with_limit_and_skip else None
        if plan is None:
            return original(self, with_limit_and_skip)
        store = self.collection._store
        store._remove_expired_documents()
        keys = _sorted_ids(store).sorted_keys()
        if keys is None:
            return original(self, with_limit_and_skip)
        bounds, wanted = plan
        if "$gt" in bounds:
            start = bisect.bisect_right(keys, bounds["$gt"])
        elif "$gte" in bounds:
            start = bisect.bisect_left(keys, bounds["$gte"])
        else:
            start = 0
        if "$gte" in bounds and "$gt" in bounds:
            start = max(start, bisect.bisect_left(keys, bounds["$gte"]))
        end = len(keys)
        if "$lt" in bounds:
            end = min(end, bisect.bisect_left(keys, bounds["$lt"]))
        if "$lte" in bounds:
            end = min(end, bisect.bisect_right(keys, bounds["$lte"]))
        documents, found = store._documents, []
        matches = _matcher(self._spec, filter_applies)
        for position in range(start, end):
            document = documents.get(keys[position])
            if document is not None and matches(document):
                found.append(document)
                if len(found) == wanted:
                    break
        tz_aware = self.collection.codec_options.tz_aware
        plain = _plain_projector(self._projection, tz_aware, helpers.utc)
        results = []
        for document in found[self._skip:]:
            copied = plain(document) if plain else None
            if copied is None:  # mongomock's own copy, for everything but plain fields
                copied = self.collection._copy_only_fields(document, self._projection, dict)
                if tz_aware:
                    copied = helpers.make_datetime_timezone_aware_in_document(copied)
            results.append(copied)
        self._pingxuan_page = (key, results)
        return results

    _compute_results.pingxuan_ordered_pages = True
    return _compute_results


class ConflictingUpdatePaths(ValueError):
    """An update names one path (or a path and its prefix) twice: MongoDB refuses it."""


def conflicting_paths(update):
    """The pairs of paths of an update document that MongoDB would refuse together.

    MongoDB answers "Updating the path 'a.b' would create a conflict at 'a'";
    mongomock applies both in turn. The embedded store refuses them too, so a
    test catches what production would refuse.
    """
    if not isinstance(update, dict):
        return []
    paths = sorted(path for operator, fields in update.items()
                   if operator.startswith("$") and isinstance(fields, dict) for path in fields)
    return [(first, second) for first, second in zip(paths, paths[1:])
            if second == first or second.startswith(first + ".")]


def _refusing_conflicts(original):
    def _update(self, spec, document, *args, **kwargs):
        conflicts = conflicting_paths(document)
        if conflicts:
            first, second = conflicts[0]
            raise ConflictingUpdatePaths(
                f"Updating the path '{second}' would create a conflict at '{first}'")
        return original(self, spec, document, *args, **kwargs)

    _update.pingxuan_conflicts = True
    return _update


def _give_mongomock_an_id_index(mongomock):
    """Answer ``_id`` filters by lookup and pages in ``_id`` order by a walk of the sorted keys,
    as MongoDB's ``_id`` index does (same results), insert plain documents without mongomock's
    generic walks (same checks, same stored form), and refuse conflicting update paths, as
    MongoDB does."""
    collection = mongomock.collection.Collection
    with _embedded_lock:
        if not getattr(collection._iter_documents, "pingxuan_id_index", False):
            collection._iter_documents = _iter_by_id(collection._iter_documents)
        if not getattr(collection._insert, "pingxuan_fast_inserts", False):
            collection._insert = _fast_inserts(collection._insert)
        if not getattr(collection._update, "pingxuan_conflicts", False):
            collection._update = _refusing_conflicts(collection._update)
        cursor, collection_store = mongomock.collection.Cursor, mongomock.store.CollectionStore
        if not getattr(cursor._compute_results, "pingxuan_ordered_pages", False):
            cursor._compute_results = _ordered_pages(cursor._compute_results)
        if not getattr(collection_store.__setitem__, "pingxuan_sorted_ids", False):
            collection_store.__setitem__, collection_store.__delitem__ = _tracking_keys(
                collection_store)


# --- counters: limits that hold across instances --------------------------------------------

def take(collection, key, limit, count=1, on_insert=None):
    """Add ``count`` to the counter ``key`` unless that would pass ``limit``; ``True`` if added.

    One conditional update on one document, so any number of instances sharing
    the store enforce ``limit`` exactly. ``on_insert`` fields are written when
    the counter is created (e.g. when it may be pruned).
    """
    if count > limit:
        return False
    return upsert_unless_refused(collection, {"_id": key, "n": {"$lte": limit - count}},
                                 {"$inc": {"n": count}}, on_insert)


def upsert_unless_refused(collection, query, update, on_insert=None):
    """Apply ``update`` to the document of ``query``'s ``_id`` if it meets ``query``'s
    condition, or create it (with ``on_insert``) if there is none; ``False`` when it exists
    and the condition refuses it.

    The upsert of a refused document collides with its ``_id``; so does one racing a
    document another writer (another instance, another kind of write) created just now.
    Asked again without the insert, only the first is refused. (MongoDB retries such an
    upsert itself only when the query is an equality on ``_id`` alone.)
    """
    first = dict(update, **{"$setOnInsert": on_insert}) if on_insert else update
    try:
        collection.update_one(query, first, upsert=True)
    except DuplicateKeyError:
        return bool(collection.update_one(query, update).matched_count)
    return True


def take_many(collection, wanted, known=(), on_insert=None):
    """:func:`take` for many counters: ``{key: (limit, count)}`` -> ``{key: taken?}``.

    Counters not in ``known`` (those that did not exist when read) are created
    with one ``insert_many`` — the cheap write on both stores; one that another
    instance created meanwhile, and every known one, is taken by :func:`take`.
    """
    extra = on_insert or (lambda key: None)
    fresh = [key for key, (limit, count) in wanted.items()
             if key not in known and 0 < count <= limit]
    taken = {}
    existed = duplicates_of([dict(extra(key) or {}, _id=key, n=wanted[key][1]) for key in fresh],
                            collection.insert_many)
    for index, key in enumerate(fresh):
        if index not in existed:
            taken[key] = True
    for key, (limit, count) in wanted.items():
        if key not in taken:
            taken[key] = take(collection, key, limit, count, extra(key))
    return taken


def duplicates_of(documents, insert_many):
    """Insert every document; return the indexes of those whose ``_id`` already existed."""
    if not documents:
        return set()
    try:
        insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        other = [error for error in errors if error.get("code") != DUPLICATE_KEY]
        if other:
            raise
        return {error["index"] for error in errors}
    return set()


def give_back(collection, key, count=1):
    """Undo a :func:`take` whose use did not happen (the vote was not stored)."""
    if count:
        collection.update_one({"_id": key}, {"$inc": {"n": -count}})


def counted(collection, keys):
    """``{key: n}`` of the counters that exist among ``keys``."""
    if not keys:
        return {}
    return {row["_id"]: row.get("n", 0)
            for row in collection.find({"_id": {"$in": sorted(keys)}}, {"n": 1})}


class Repository:
    """Base of each service's store: domain verbs over its own database."""

    def __init__(self, db):
        self.db = db

    def ensure_indexes(self):
        """Create the indexes (unique ones included) the verbs rely on; idempotent."""


class MongoStore(DependencyProvider):
    """Builds the service's repository in ``setup()`` and hands it to every worker."""

    def __init__(self, repository_cls):
        self.repository_cls = repository_cls

    def setup(self):
        config = self.container.config
        self.uri = store_uri(config)
        self.client = connect(self.uri)
        db = self.client[cfg.database_name(config, self.container.service_name)]
        self.repository = self.repository_cls(db)
        self.repository.ensure_indexes()

    @property
    def kind(self):
        return store_kind(self.uri)

    def get_dependency(self, worker_ctx):
        return self.repository

    def stop(self):
        release(self.uri, self.client)

    def kill(self):
        self.stop()
