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


def exact_chain(ident, root, client_parent, shape=fidelity.SEVEN):
    """The documents of one request whose every parent is right."""
    docs = {}

    def down(prefix, parent):
        kids = [c for _, caller, c in shape["hops"] if caller == prefix]
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


def five_failures(docs_by_request, concurrency):
    docs = [("agent", d) for docs in docs_by_request for d in docs.values()]
    level = {"concurrency": concurrency, "requests": [REQ, OTHER], "answered_200": 2}
    return fidelity.chain_failures(docs, [level], fidelity.FIVE)[0]


def five_chains():
    return exact_chain(*REQ, shape=fidelity.FIVE), exact_chain(*OTHER, shape=fidelity.FIVE)


def node_call_misplaced(mine, other, inferred):
    """Moves r1's Node call to nginx under r2's Node segment, as an event loop can, and puts
    everything below it in r2's trace (the header injected into the call carried it)."""
    moved = next(c for c in mine["b"]["subsegments"] if "/cka/" in fidelity.url_path(c))
    mine["b"]["subsegments"].remove(moved)
    other["b"]["subsegments"].append(moved)
    moved["metadata"] = {"passport": {"link": {"rule": "latest_on_thread", "inferred": inferred}}}
    mine["cka"]["trace_id"] = mine["dka"]["trace_id"] = OTHER[1]


class ChainPromises(unittest.TestCase):
    """chain_failures (--require-chains) on the five-service shape."""

    def test_exact_chains_keep_every_promise(self):
        self.assertEqual(five_failures(five_chains(), 1), [])
        self.assertEqual(five_failures(five_chains(), 8), [])

    def test_a_node_call_under_another_request_passes_only_when_marked_inferred(self):
        mine, other = five_chains()
        node_call_misplaced(mine, other, inferred=True)
        self.assertEqual(five_failures([mine, other], 8), [])
        self.assertEqual(len(five_failures([mine, other], 1)), 2)  # sequential: never
        mine, other = five_chains()
        node_call_misplaced(mine, other, inferred=False)
        self.assertEqual(five_failures([mine, other], 8), [
            "r1 (node keep-alive agent → nginx): the call sits in another request's segment "
            "(/b/r2), link not marked inferred"])

    def test_a_node_call_made_a_segment_of_its_own_fails_unless_marked(self):
        mine, other = five_chains()
        alone = next(c for c in mine["b"]["subsegments"] if "/g/" in fidelity.url_path(c))
        mine["b"]["subsegments"].remove(alone)
        trace = "1-00000001-000000000000000000000003"
        mine["orphan"] = segment("b", "", trace, None, [alone])
        del mine["orphan"]["http"]  # a segment for the call alone: no request of its own
        mine["g"]["trace_id"] = mine["dg"]["trace_id"] = trace
        self.assertEqual(five_failures([mine, other], 8), [
            "r1 (node keep-alive agent → express+sdk): the call sits in a segment of its own "
            "(made while no request was served, a new trace), link not marked inferred"])

    def test_a_proxy_skipped_under_a_call_placed_right_fails(self):
        mine, other = five_chains()
        node_call = next(c for c in mine["b"]["subsegments"] if "/cka/" in fidelity.url_path(c))
        mine["dka"]["parent_id"] = node_call["id"]
        self.assertEqual(five_failures([mine, other], 8), [
            "r1 (nginx upstream keepalive → python): wrong_parent, under this request's call to "
            "/cka/ (a hop skipped), though every call above it sits in its own request"])

    def test_another_trace_below_calls_placed_right_fails(self):
        mine, other = five_chains()
        mine["dg"]["trace_id"] = OTHER[1]
        failures = five_failures([mine, other], 8)
        self.assertEqual(len(failures), 1)
        self.assertIn("express+sdk → python): other_trace", failures[0])

    def test_a_proxy_call_under_another_request_fails_even_if_marked(self):
        mine, other = five_chains()
        moved = mine["cka"]["subsegments"].pop()
        other["cka"]["subsegments"].append(moved)
        moved["metadata"] = {"passport": {"link": {"inferred": True}}}
        self.assertIn("r1 (nginx upstream keepalive → python): the call sits in another "
                      "request's segment (/cka/r2)", five_failures([mine, other], 8))

    def test_a_missing_document_and_a_failed_request_fail(self):
        mine, other = five_chains()
        del mine["g"]
        failures = five_failures([mine, other], 8)
        self.assertIn("r1 (node keep-alive agent → express+sdk): no document", failures)
        docs = [("agent", d) for d in five_chains()[0].values()]
        level = {"concurrency": 8, "requests": [REQ], "answered_200": 0}
        self.assertEqual(fidelity.chain_failures(docs, [level], fidelity.FIVE)[0],
                         ["0 of 1 requests answered 200"])


if __name__ == "__main__":
    unittest.main()
