"""The pairwise LLM judge against a real chat-completions server on 127.0.0.1 (stdlib http.server),
through the openai client: both orders, un-swapping, malformed answers, retries, cache, budget."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from mobench.pairwise import (BudgetExceeded, ClientSettings, PairwiseClient, VerdictCache, compare,
                              parse_scores)

PLUGIN = str(REPO / "tests" / "micro_text.py")
_PAIR = re.compile(r"\[Response A\]\n(.*?)\n\n\[Response B\]\n(.*?)\n\nOn the first line", re.S)


class FakeJudge:
    """Scores a response 9 if it says 'good', 2 if 'bad', else 5; `bias` is added to Response A;
    a Response A containing 'garble' gets an unparsable answer. `fail` lists HTTP codes to return
    before answering (one per request)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.fail: list[int] = []
        self.bias = 0
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if self.fail:
                code = self.fail.pop(0)
                return code, {"error": {"message": f"scripted {code}", "type": "server_error"}}
            user = body["messages"][-1]["content"]
            first, second = _PAIR.search(user).groups()
            self.requests.append((first, second))
            self.bodies.append(body)

        def score(text: str) -> int:
            return 9 if "good" in text else 2 if "bad" in text else 5

        content = ("I would rather not say." if "garble" in first
                   else f"{min(10, score(first) + self.bias)} {score(second)}\nReasons follow.")
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}


@pytest.fixture
def server():
    fake = FakeJudge()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            assert self.path.endswith("/chat/completions"), self.path
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            code, payload = fake.answer(body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield fake
    httpd.shutdown()


def _client(server, tmp_path, **settings) -> PairwiseClient:
    sleeps: list[float] = []
    client = PairwiseClient(ClientSettings(base_url=server.url, model="judge-model", **settings), "gpt4-pairwise@1",
                            VerdictCache(tmp_path / "cache.sqlite"), sleep=sleeps.append)
    client.sleeps = sleeps
    return client


@pytest.mark.parametrize("text, expected", [("8 3", (8, 3)), ("8/10 3/10 because", (8, 3)),
                                            ("Response A: 10, Response B: 7", (10, 7)), ("A=2 B=9", (2, 9)),
                                            ("8 out of 10 and 6 out of 10", (8, 6)),
                                            ("Response A: 8/10", None), ("A: 9 (out of 10)", None), ("7.5 8", None),
                                            ("I cannot decide", None), ("", None), ("0 5", None),
                                            ("\n", None), ("7\n3", None), ("1 2 3", None)])
def test_first_line_parsing(text, expected):
    assert parse_scores(text) == expected


def test_both_orders_are_asked_and_unswapped(server, tmp_path):
    client = _client(server, tmp_path)
    verdict = compare(client, "helpful", "Q?", "a good answer", "a bad answer")
    assert server.requests == [("a good answer", "a bad answer"), ("a bad answer", "a good answer")]
    assert (verdict.win, verdict.candidate_score, verdict.reference_score) == (1.0, 9.0, 2.0)
    assert compare(client, "helpful", "Q?", "a bad answer", "a good answer").win == 0.0
    assert client.usage.requests == 4 and client.usage.prompt_tokens == 400
    assert client.usage.cost == pytest.approx((400 * 30 + 40 * 60) / 1e6)


def test_position_bias_cancels(server, tmp_path):
    server.bias = 3  # Response A always gets 3 more
    verdict = compare(_client(server, tmp_path), "humor", "Q?", "plain one", "plain two")
    assert verdict.win == 0.5 and verdict.candidate_score == verdict.reference_score == 6.5


def test_malformed_answers_are_left_out(server, tmp_path):
    client = _client(server, tmp_path)
    one = compare(client, "helpful", "Q?", "garble good", "bad")  # only the reference-first order parses
    assert (one.win, one.valid_orders) == (1.0, 1)
    server.bias = 0
    none = compare(client, "helpful", "Q?", "garble x", "garble y")
    assert none.win is None and none.valid_orders == 0


def test_rate_limit_and_server_errors_are_retried(server, tmp_path):
    server.fail = [429, 500]
    client = _client(server, tmp_path, backoff=0.5)
    verdict = compare(client, "helpful", "Q?", "good", "bad")
    assert verdict.win == 1.0
    assert client.usage.retries == 2 and client.usage.errors == {"RateLimitError": 1, "InternalServerError": 1}
    assert client.sleeps == [0.5, 1.0]  # exponential backoff


def test_retries_give_up_with_a_clear_error(server, tmp_path):
    from mobench.errors import MobenchError

    server.fail = [503] * 10
    with pytest.raises(MobenchError, match="InternalServerError.*after 3 attempts"):
        compare(_client(server, tmp_path, retries=2), "helpful", "Q?", "good", "bad")


def test_rerun_is_served_from_the_cache(server, tmp_path):
    compare(_client(server, tmp_path), "helpful", "Q?", "good", "bad")
    assert len(server.requests) == 2
    again = _client(server, tmp_path)
    assert compare(again, "helpful", "Q?", "good", "bad").win == 1.0
    assert len(server.requests) == 2 and again.usage.requests == 0 and again.usage.cache_hits == 2
    compare(again, "harmless", "Q?", "good", "bad")  # another objective is another verdict
    assert len(server.requests) == 4
    elsewhere = PairwiseClient(ClientSettings(base_url=server.url.replace("/v1", "/v1/"), model="judge-model"),
                               "gpt4-pairwise@1", VerdictCache(tmp_path / "cache.sqlite"), sleep=lambda s: None)
    compare(elsewhere, "helpful", "Q?", "good", "bad")  # another base URL is another judge: asked again
    assert len(server.requests) == 6


def test_budget_stops_new_requests(server, tmp_path):
    client = _client(server, tmp_path, max_requests=3)
    compare(client, "helpful", "Q1", "good", "bad")
    with pytest.raises(BudgetExceeded, match="request budget reached \\(3"):
        compare(client, "helpful", "Q2", "good", "bad")
    assert len(server.requests) == 3
    costly = _client(server, tmp_path, max_cost=0.004)  # one request costs 0.0036
    compare(costly, "helpful", "Q1", "good", "bad")  # cached: free
    with pytest.raises(BudgetExceeded, match="cost budget"):
        compare(costly, "helpful", "Q3", "good", "bad")


def test_judge_command_rescored_a_run_and_reruns_from_cache(cli, server):
    micro = "micro-text:sft_steps=30:rl_steps=4:samples=1:max_new_tokens=10"
    result = cli("--plugin", PLUGIN, "-q", "run", "--task", micro, "--methods", "sft,rs", "--grid", "3", "--out", "run",
                 "--limit", "4")  # the judge must rebuild the task with the run's limit
    assert result.code == 0, result.err
    spec = f"gpt4-pairwise:base_url='{server.url}':model=judge-model:backoff=0"
    result = cli("--plugin", PLUGIN, "-q", "judge", "run", "--judges", spec, "--limit", "3")
    assert result.code == 0, result.err
    report = json.loads(next(Path("run/judged").glob("*.json")).read_text())
    assert report["kind"] == "pairwise" and report["reference"] == "sft" and report["n_prompts"] == 3
    rs = report["methods"]["rs"]
    assert [p["mu"] for p in rs["points"]] == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    assert all(len(p["win_rates"]) == 2 and 0 <= min(p["win_rates"]) <= max(p["win_rates"]) <= 1 for p in rs["points"])
    assert "hv" in rs["metrics"] and "sft" not in report["methods"]
    # 3 prompts x 3 μ x 2 objectives x 2 orders, minus pairs of identical texts answered once each from cache
    first_requests = report["usage"]["requests"]
    assert 0 < first_requests <= 36 and len(server.requests) == first_requests
    # A cell of another run in the same folder (another seed) is not this run's output: never judged.
    cell = next(c for c in (json.loads(p.read_text()) for p in Path("run/cells").glob("*.json")) if c["method"] == "rs")
    foreign = {**cell, "seed": 1, "method_id": "another-run",
               "samples": [{**s, "output": "FOREIGN"} for s in cell["samples"]]}
    Path("run/cells/zzzz-foreign.json").write_text(json.dumps(foreign))  # read last, so it would win
    result = cli("--plugin", PLUGIN, "-q", "judge", "run", "--judges", spec, "--limit", "3")
    assert result.code == 0
    report = json.loads(next(Path("run/judged").glob("*.json")).read_text())
    assert report["usage"]["requests"] == 0 and report["usage"]["cache_hits"] > 0
    assert len(server.requests) == first_requests
    absent = cli("--plugin", PLUGIN, "-q", "judge", "run", "--judges", spec + ":reference=bone-soup")
    assert "reference method 'bone-soup' is not in this run" in absent.err and len(server.requests) == first_requests


def test_judge_command_errors(cli, tmp_path):
    assert "holds no results.json" in cli("judge", str(tmp_path), "--judges", "gpt4-pairwise").err
    assert "did you mean 'gpt4-pairwise'" in cli("judge", str(tmp_path), "--judges", "gpt4-pairwse").err
    result = cli("run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "q")
    assert result.code == 0
    err = cli("judge", "q", "--judges", "gpt4-pairwise:base_url='http://127.0.0.1:9/v1'").err
    assert "scores text replies, but the outputs of task 'quad' are parameter vectors" in err
    # A copy of a run (as the committed reference runs are) has results.json but no cells.
    Path("copy").mkdir()
    Path("copy/results.json").write_bytes(Path("q/results.json").read_bytes())
    err = cli("judge", "copy", "--judges", "quadratic:center=[1,1]:curvature=[1,1]").err
    assert "copy/cells does not exist" in err and "rerun its `mobench run` command" in err


def test_temperature_and_max_tokens_can_be_left_out_for_reasoning_models(server, tmp_path):
    from mobench.registry import judges

    compare(_client(server, tmp_path), "helpful", "Q?", "good", "bad")
    assert server.bodies[-1]["temperature"] == 0 and server.bodies[-1]["max_tokens"] == 200
    bare = _client(server, tmp_path, temperature=None, max_tokens=0)
    assert compare(bare, "helpful", "Q?", "good", "bad").win == 1.0  # another temperature: asked again
    assert "temperature" not in server.bodies[-1] and "max_tokens" not in server.bodies[-1]
    assert judges.create("gpt4-pairwise:temperature=none:max_tokens=0").params.temperature is None
