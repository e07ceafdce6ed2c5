"""Checks of the fidelity benchmark's counting on hand-made documents (no agent, no kernel):
    python3 -m unittest discover -s bench/fidelity -p 'test_*.py'
"""
import itertools
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fidelity  # noqa: E402

_ids = itertools.count(1)


def new_id():
    return "%016x" % next(_ids)


def call(prefix, ident):
    return {"id": new_id(), "name": "callee", "namespace": "remote",
            "http": {"request": {"url": "http://10.0.0.1:8080/%s/%s" % (prefix, ident)}}}


def segment(prefix, ident, trace, parent, calls=()):
    doc = {"id": new_id(), "name": prefix, "trace_id": trace,
           "http": {"request": {"url": "http://10.0.0.1:8080/%s/%s" % (prefix, ident)}}}
    if parent:
        doc["parent_id"] = parent
    if calls:
        doc["subsegments"] = list(calls)
    return doc


def exact_chain(ident, root, client_parent):
    """The documents of one request whose every parent is right."""
    docs = {}

    def down(prefix, parent):
        kids = [c for _, caller, c in fidelity.HOPS if caller == prefix]
        calls = {k: call(k, ident) for k in kids}
        docs[prefix] = segment(prefix, ident, root, parent, calls.values())
        for k, c in calls.items():
            down(k, c["id"])

    down("a", client_parent)
    return docs


REQ = ("r1", "1-00000001-000000000000000000000001", "00000000000000aa")
OTHER = ("r2", "1-00000001-000000000000000000000002", "00000000000000bb")


def counts(docs_by_request):
    docs = [("agent", d) for docs in docs_by_request for d in docs.values()]
    level = {"concurrency": 1, "requests": [REQ, OTHER], "answered_200": 2}
    return fidelity.analyse(docs, [level])[0]


class Counting(unittest.TestCase):
    def test_exact_chains_are_exact_everywhere(self):
        r = counts([exact_chain(*REQ), exact_chain(*OTHER)])
        self.assertEqual(r["chains_exact"], 2)
        self.assertEqual(r["overall"]["exact"], 2 * len(fidelity.HOPS))
        self.assertEqual(r["overall"]["call_own"], 2 * (len(fidelity.HOPS) - 1))

    def test_a_call_under_another_request_puts_its_callee_in_another_trace(self):
        mine, other = exact_chain(*REQ), exact_chain(*OTHER)
        moved = mine["b"]["subsegments"].pop(2)  # node's fetch to aiohttp, for r1 ...
        other["b"]["subsegments"].append(moved)  # ... placed under r2's node segment
        mine["e"]["trace_id"] = OTHER[1]  # and the header carried r2's trace
        r = counts([mine, other])
        hop = r["hops"]["node fetch → aiohttp"]
        self.assertEqual((hop["exact"], hop["other_trace"], hop["linked"]), (1, 1, 2))
        self.assertEqual((hop["call_own"], hop["call_elsewhere"]), (1, 1))
        self.assertEqual(r["chains_exact"], 1)

    def test_a_skipped_proxy_is_a_wrong_parent(self):
        mine = exact_chain(*REQ)
        node_call = next(c for c in mine["b"]["subsegments"] if "/cnk/" in fidelity.url_path(c))
        mine["dnk"]["parent_id"] = node_call["id"]
        r = counts([mine, exact_chain(*OTHER)])
        hop = r["hops"]["nginx → python"]
        self.assertEqual((hop["exact"], hop["wrong_parent"], hop["linked"]), (1, 1, 1))
        self.assertEqual(r["unlinked_parents"],
                         {"nginx → python: under this request's call to /cnk/ (a hop skipped)": 1})

    def test_a_root_and_a_missing_document(self):
        mine = exact_chain(*REQ)
        del mine["f"]["parent_id"]
        del mine["dg"]
        r = counts([mine, exact_chain(*OTHER)])
        self.assertEqual(r["hops"]["aiohttp → go"]["missing_parent"], 1)
        self.assertEqual(r["hops"]["express+sdk → python"]["missing_doc"], 1)
        self.assertEqual(r["overall"]["exact"], 2 * len(fidelity.HOPS) - 2)

    def test_a_late_call_sent_as_its_own_subsegment_is_found(self):
        mine = exact_chain(*REQ)
        late = mine["f"].pop("subsegments")[0]
        late.update(type="subsegment", trace_id=REQ[1], parent_id=mine["f"]["id"])
        mine["late"] = late
        r = counts([mine, exact_chain(*OTHER)])
        self.assertEqual(r["hops"]["go → express+sdk"]["exact"], 2)


if __name__ == "__main__":
    unittest.main()
