"""The store modules use only the MongoDB operations listed (with how both stores treat
them) in ``shared/store.py``, and the embedded store's ``_id`` lookup answers as its scan."""
import re
from pathlib import Path

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import store as store_module
from shared.store import BOUNDED_ARRAYS, QUERY_OPERATORS, UPDATE_OPERATORS, connect, take

ROOT = Path(__file__).resolve().parents[2]
#: Where store operations are written: every service's store, and the shared modules.
SOURCES = sorted(ROOT.glob("services/*/store.py")) + sorted(
    path for path in (ROOT / "shared").glob("*.py"))
#: A ``$word`` inside a string literal (MongoDB operators start lower-case; ``$PINGXUAN_HOME`` is no operator).
OPERATOR = re.compile(r"""["']\$([a-z][A-Za-z]*)""")
#: ``$``-words that are not MongoDB operators (JSON-schema references in OpenAPI documents).
NOT_OPERATORS = {"ref"}


def operators_in(path):
    return {f"${name}" for name in OPERATOR.findall(path.read_text(encoding="utf-8"))
            if name not in NOT_OPERATORS}


def test_every_operator_the_store_code_uses_is_listed_with_how_both_stores_treat_it():
    used = {}
    for path in SOURCES:
        for operator in operators_in(path):
            used.setdefault(operator, []).append(str(path.relative_to(ROOT)))
    unlisted = {op: files for op, files in used.items()
                if op not in UPDATE_OPERATORS | QUERY_OPERATORS}
    assert unlisted == {}, "add these to shared/store.py, with how MongoDB and mongomock differ"
    notes = Path(store_module.__file__).read_text(encoding="utf-8")
    for operator in UPDATE_OPERATORS | QUERY_OPERATORS:
        assert f"``{operator}" in notes, f"{operator} is listed but its behaviour is not written"


#: ``"$push": {"name"`` or ``{OUTBOX_FIELD`` (the outbox's constant).
GROWN = re.compile(r"""["']\$(?:push|addToSet)["']\s*:\s*\{\s*(?:["'](\w+)["']|(OUTBOX_FIELD))""")


def arrays_grown_in(text):
    return {quoted or ("outbox" if constant else None) for quoted, constant in GROWN.findall(text)}


def test_every_array_the_store_code_grows_has_a_written_bound():
    grown = {}
    for path in SOURCES:
        for name in arrays_grown_in(path.read_text(encoding="utf-8")):
            grown.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert {name: files for name, files in grown.items() if name not in BOUNDED_ARRAYS} == {}
    assert "holders" in grown and "outbox" in grown  # the scan sees both spellings
    assert arrays_grown_in('c.update_one(q, {"$push": {"voter_ids": v}})') == {"voter_ids"}


def test_the_scan_catches_an_operator_that_is_not_listed(tmp_path):
    source = tmp_path / "store.py"
    source.write_text('coll.update_one({"_id": k}, {"$rename": {"a": "b"}, "$set": {"c": 1}})\n'
                      'coll.aggregate([{"$group": {"_id": None}}])\n')
    assert operators_in(source) - (UPDATE_OPERATORS | QUERY_OPERATORS) == {"$rename", "$group"}


def test_there_is_one_voting_store_for_both_kinds_of_store():
    source = (ROOT / "services" / "voting" / "store.py").read_text(encoding="utf-8")
    assert "mongomock" not in source and "Memory" not in source
    assert "is_embedded" not in source


# --- the embedded store's _id index ---------------------------------------------------------

IDS = st.sampled_from(["a", "b", "c", "d", "e|1", "e|2"])
FILTERS = st.one_of(
    IDS.map(lambda i: {"_id": i}),
    IDS.map(lambda i: {"_id": {"$eq": i}}),
    st.lists(IDS, max_size=5).map(lambda ids: {"_id": {"$in": ids}}),
    st.tuples(st.lists(IDS, max_size=5), st.integers(0, 3)).map(
        lambda t: {"_id": {"$in": t[0]}, "n": {"$lt": t[1]}}),
    st.tuples(IDS, st.integers(0, 3)).map(lambda t: {"_id": t[0], "n": t[1]}),
    st.just({"_id": {"$gt": "b"}}),
    st.just({"n": {"$gte": 1}}),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(IDS, st.integers(0, 3), max_size=6), FILTERS)
def test_an_id_lookup_finds_what_a_scan_finds(documents, filter):
    client = connect("mongomock://id-index/")
    collection = client["lookup"]["things"]
    collection.delete_many({})
    if documents:
        collection.insert_many([{"_id": key, "n": n} for key, n in documents.items()])
    scanned = [doc for doc in collection.find({}) if mongomock.filtering.filter_applies(
        filter, doc)]
    found = list(collection.find(filter))
    assert sorted(found, key=lambda d: d["_id"]) == sorted(scanned, key=lambda d: d["_id"])
    assert collection.count_documents(filter) == len(scanned)


def test_conditional_increments_stop_at_the_limit_and_recover():
    collection = connect("mongomock://counters/")["counters"]["c"]
    collection.delete_many({})
    assert [take(collection, "k", 3) for _ in range(5)] == [True, True, True, False, False]
    assert take(collection, "j", 3, count=4) is False and collection.count_documents({}) == 1
    assert take(collection, "j", 3, count=3) is True
    assert collection.find_one({"_id": "k"})["n"] == 3


@pytest.mark.parametrize("uri", ["", None])
def test_no_uri_is_no_store(uri):
    with pytest.raises(store_module.StoreNotConfigured):
        connect(uri)


def test_the_embedded_store_refuses_conflicting_update_paths_as_mongodb_does():
    collection = connect("mongomock://conflicts/")["conflicts"]["c"]
    collection.delete_many({})
    collection.insert_one({"_id": "a", "list": [1], "doc": {"n": 1}})
    for update in ({"$push": {"list": 2}, "$pull": {"list": 1}},
                   {"$set": {"doc": {}}, "$inc": {"doc.n": 1}},
                   {"$setOnInsert": {"doc.n": 0}, "$inc": {"doc.n": 1}}):
        with pytest.raises(store_module.ConflictingUpdatePaths, match="would create a conflict"):
            collection.update_one({"_id": "a"}, update, upsert=True)
    assert collection.find_one({"_id": "a"}) == {"_id": "a", "list": [1], "doc": {"n": 1}}
    # Sibling paths and a path beside its lookalike are fine.
    collection.update_one({"_id": "a"}, {"$set": {"doc.m": 2}, "$inc": {"doc.n": 1},
                                         "$push": {"listing": 3}})
    assert collection.find_one({"_id": "a"})["doc"] == {"n": 2, "m": 2}


PAGE_IDS = st.text(alphabet="ab|cé中", min_size=1, max_size=4)
BOUNDS = st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), PAGE_IDS, max_size=2)
CHANGES = st.lists(st.tuples(st.sampled_from(["insert", "delete", "update"]), PAGE_IDS,
                             st.sampled_from(["x", "y"])), max_size=30)


def reference_page(documents, filter, projection, skip, limit):
    """What MongoDB's _id-ordered walk answers, written out in Python."""
    wanted = [doc for _, doc in sorted(documents.items())
              if mongomock.filtering.filter_applies(filter, doc)][skip:skip + limit]
    return [{name: doc[name] for name in doc if name in projection or name == "_id"}
            for doc in wanted]


@settings(max_examples=300, deadline=None)
@given(CHANGES, CHANGES, BOUNDS, st.sampled_from([None, "x", "y"]), st.integers(0, 2),
       st.integers(1, 6))
def test_a_page_in_id_order_is_what_sorting_everything_gives(before, after, bounds, campaign,
                                                             skip, limit):
    """Pages read between inserts, deletes and updates (the sorted ids are kept, not rebuilt,
    between reads) answer what sorting every matching document and cutting the page answers."""
    collection = connect("mongomock://pages/")["pages"]["votes"]
    collection.delete_many({})
    documents = {}
    filter = dict({"_id": bounds} if bounds else {}, **({"campaign_id": campaign} if campaign
                                                         else {}))
    projection = {"campaign_id": 1, "at": 1}
    for changes in (before, after):
        for change, key, value in changes:
            if change == "insert" and key not in documents:
                documents[key] = {"_id": key, "campaign_id": value, "at": None, "n": [1]}
                collection.insert_one(dict(documents[key]))
            elif change == "delete" and key in documents:
                del documents[key]
                collection.delete_one({"_id": key})
            elif change == "update" and key in documents:
                documents[key]["campaign_id"] = value
                collection.update_one({"_id": key}, {"$set": {"campaign_id": value}})
        page = list(collection.find(filter, projection).sort("_id", 1).skip(skip).limit(limit))
        assert page == reference_page(documents, filter, projection, skip, limit)


def test_a_page_in_id_order_gives_stored_times_their_utc_zone_and_copies():
    from datetime import datetime, timezone

    collection = connect("mongomock://pages/")["pages"]["times"]
    collection.delete_many({})
    at = datetime(2013, 11, 5, 2, 0, 0, 123000, tzinfo=timezone.utc)
    collection.insert_many([{"_id": f"k{n}", "at": at, "tags": ["a"]} for n in range(3)])
    plain = list(collection.find({"_id": {"$gte": "k1"}}, {"at": 1}).sort("_id", 1).limit(1))
    assert plain == [{"_id": "k1", "at": at}] and plain[0]["at"].utcoffset().total_seconds() == 0
    nested = list(collection.find({}, {"tags": 1}).sort("_id", 1).limit(2))
    nested[0]["tags"].append("changed")  # a copy, as mongomock's own: the store is untouched
    assert collection.find_one({"_id": "k0"})["tags"] == ["a"]


def test_a_page_in_id_order_falls_back_to_mongomock_for_ids_that_are_not_strings():
    collection = connect("mongomock://pages/")["pages"]["numbers"]
    collection.delete_many({})
    collection.insert_many([{"_id": n} for n in (3, 1, 2)])
    assert [doc["_id"] for doc in collection.find({}).sort("_id", 1).limit(2)] == [1, 2]


# Strings with lone surrogates (which UTF-8, and so BSON, cannot carry) and integers at and
# beyond the 64-bit bounds: the fast path must refuse them as mongomock's trial encoding does.
TEXT = st.one_of(st.text(max_size=4), st.text(st.characters(exclude_categories=()), max_size=3),
                 st.sampled_from(["\ud800", "ok\udfff", "名字"]))
INTEGERS = st.one_of(st.integers(-2 ** 70, 2 ** 70),
                     st.sampled_from([2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1]))
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, TEXT,
                    st.floats(allow_nan=False), st.binary(max_size=4),
                    st.datetimes(timezones=st.sampled_from([None, __import__(
                        "datetime").timezone.utc, __import__("datetime").timezone(
                        __import__("datetime").timedelta(hours=8))])))
KEYS = st.sampled_from(["a", "b", "$c", "d\0", "by", "名", "e\udc80"])
DOCUMENTS = st.dictionaries(KEYS, st.one_of(SCALARS, st.dictionaries(KEYS, SCALARS, max_size=3),
                                            st.lists(SCALARS, max_size=2)), max_size=4)


def _insert(insert, collection, document):
    """What one insert stores, or the type of its refusal."""
    try:
        insert(collection, document)
    except Exception as error:
        return type(error).__name__
    return collection._store._documents[document["_id"]]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=3), st.integers(0, 3), st.sampled_from([2 ** 63, "\ud800"])),
       st.one_of(DOCUMENTS, st.fixed_dictionaries({"code": st.sampled_from(
           [__import__("bson").code.Code("f()", {"x": 2 ** 70}),
            __import__("bson").int64.Int64(5), __import__("bson").code.Code("g()")])})),
       st.booleans())
def test_a_fast_insert_stores_and_refuses_what_mongomocks_own_does(key, document, taken):
    collection = connect("mongomock://fast-inserts/")["inserts"]["things"]
    fast = collection._insert
    assert getattr(type(collection)._insert, "pingxuan_fast_inserts", False)
    own = type(collection)._insert.__closure__  # the original is what the fast path wraps
    original = next(cell.cell_contents for cell in own
                    if getattr(cell.cell_contents, "__name__", "") == "_insert"
                    and not getattr(cell.cell_contents, "pingxuan_fast_inserts", False))
    results = []
    for insert in (lambda c, d: fast(d), lambda c, d: original(c, d)):
        collection.delete_many({})
        if taken:  # (a key mongomock refuses stays free)
            _insert(lambda c, d: original(c, d), collection, {"_id": key})
        results.append(_insert(insert, collection, dict(document, _id=key)))
    assert results[0] == results[1]
    if isinstance(results[0], dict):
        assert [type(v) for v in results[0].values()] == [type(v) for v in results[1].values()]


def _insert_many(insert, collection, documents, ordered):
    """What one insert_many stores and its refusal (type and the failing indexes)."""
    try:
        insert(collection, documents, ordered)
        refusal = None
    except Exception as error:
        refusal = (type(error).__name__, sorted(
            e["index"] for e in getattr(error, "details", {}).get("writeErrors", [])))
    return dict(collection._store._documents), refusal


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["k1", "k2", "k3", 4]), DOCUMENTS), min_size=1,
                max_size=5), st.sets(st.sampled_from(["k1", "k3", 4])), st.booleans())
def test_a_fast_insert_many_stores_and_refuses_what_mongomocks_own_does(items, taken, ordered):
    collection = connect("mongomock://fast-inserts/")["inserts"]["batches"]
    own = type(collection)._insert.__closure__
    original = next(cell.cell_contents for cell in own
                    if getattr(cell.cell_contents, "__name__", "") == "_insert"
                    and not getattr(cell.cell_contents, "pingxuan_fast_inserts", False))
    results = []
    for insert in (lambda c, d, o: c._insert(d, ordered=o),
                   lambda c, d, o: original(c, d, None, o)):
        collection.delete_many({})
        for key in taken:
            collection.insert_one({"_id": key})
        results.append(_insert_many(insert, collection,
                                    [dict(document, _id=key) for key, document in items],
                                    ordered))
    assert results[0] == results[1]
