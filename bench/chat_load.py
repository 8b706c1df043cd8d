"""End-to-end chat under load: what bookchat adds on top of the LLM, against the alternatives.

    uv run python -m bench.chat_load [--concurrency 1,10,100] [--rounds 3]
        [--think 10-20] [--site sample|docusaurus] [--embedder hash|bundled]
        [--worker-concurrency 100] [--api-workers 1] [--profile]

One run brings up, on this machine:

- the fake LLM (`tests.fake_llm`, its own process) with fixed latency: 400 ms to the first
  token, 50 tokens/s, and its default agent-like behaviour (a `search_docs` call, then an answer);
- the real stack: a uvicorn API process (uvloop + httptools), a Celery worker for the `chat`
  queue (threads pool), a private redis-server and a throwaway Postgres database;
- `bench/sync_baseline.py`: the same agent run inside a synchronous request;
- the sample site (or `--site docusaurus`: ../shared/corpora/docusaurus-docs, read in place)
  indexed once with the `hash` embedder, so the embedder does not dominate (`--embedder
  bundled`: the offline model, in the index and the worker).

Then, for each concurrency (simulated readers, each asking `--rounds` questions: back to back,
the saturating closed loop, or with `--think LOW-HIGH` reading each answer for a seeded random
LOW-HIGH seconds first), side by side in the same run:

- `llm`: the fake LLM's own time for the same work: the two streamed completions the agent makes
  (tool call, then the answer over the same tool output), with the plain openai client;
- `floor`: `worker.chat.answer_question` called in-process (same retriever, same fake LLM);
- `sync`: POST to the synchronous endpoint (time to first token = its whole latency);
- `stack`: POST /v1/chat, then follow `events_url` by SSE; time to the first `token` event and
  to `done`.

Overhead of a request = its time minus the `llm` median for the same question at the same
concurrency. With `--profile`, py-spy samples the API and the worker during the `stack` phase
at the highest concurrency and the top frames go into the results. The API's, the worker's and
the sync baseline's RSS are sampled through the run (`"rss"`). Results:
`bench/results/chat_load.json`; `python -m bench.load_report` prints them as a table.

The parts: `bench/harness.py` starts and measures the processes, `bench/load_models.py` is how
readers ask, `bench/load_report.py` turns samples into figures, `bench/profiling.py` is py-spy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    DOCUSAURUS_SITE,
    LATENCY_FIRST_TOKEN,
    PY,
    RESULTS,
    ROOT,
    SAMPLE_SITE,
    TOKENS_PER_S,
    RssSampler,
    bench_processes,
    copy_index,
    cpu_seconds,
    index_site,
    llm_env,
    load,
    machine,
    start_api,
    start_chat_worker,
    start_fake_llm,
    start_sync_baseline,
)
from bench.load_models import (
    Ask,
    ClosedLoop,
    LoadModel,
    Sample,
    ThinkTime,
    follow_answer,
    parse_think,
)
from bench.load_report import llm_medians, overheads, phase_info, phase_line
from bench.profiling import profiling, top_frames
from tests.conftest import throwaway_postgres

#: Questions about the sample site; on the docusaurus site, eight dev questions of ../shared/eval
#: (read at run time; `DOCUSAURUS_QUESTIONS`).
QUESTIONS = [
    "How do I install Lumen?",
    "How do I set soft limits on a joint?",
    "What does collision detection do?",
    "How do I tune the servos?",
    "How do I plan a trajectory?",
    "How do I make the first move?",
    "What happens when the emergency stop input is open?",
    "In what unit is collision_threshold given?",
]


# The worker as it was before `worker.chat_job.TokenRelay`: one Redis event per token delta. For
# the before/after comparison only (`--token-events per-token`).
PER_TOKEN_WORKER = """
import sys
import worker.chat_job
from shared.jobs import EventType

class PerToken:
    def __init__(self, jobs, job_id):
        self.jobs, self.job_id = jobs, job_id
    async def add(self, delta):
        await self.jobs.emit(self.job_id, EventType.TOKEN, {"delta": delta})
    async def close(self):
        pass
    async def restart(self):
        pass

worker.chat_job.TokenRelay = PerToken
from celery.__main__ import main
sys.argv[0] = "celery"
main()
"""


SITES = {"sample": SAMPLE_SITE, "docusaurus": DOCUSAURUS_SITE}
DEV_QUESTIONS = ROOT.parent / "shared" / "eval" / "dev-questions-docusaurus.jsonl"


#: The first eight answerable dev questions that the fake LLM's answer does not turn into a
#: decline over the hash embedder's index (docu-dev-006 does: a declined answer is not "ok").
DOCUSAURUS_QUESTIONS = [f"docu-dev-{n:03}" for n in (1, 2, 3, 4, 5, 7, 8, 9)]


def questions_for(site: str) -> list[str]:
    if site == "sample":
        return QUESTIONS
    rows = [json.loads(line) for line in DEV_QUESTIONS.read_text().splitlines() if line.strip()]
    by_id = {row["id"]: row["question"] for row in rows}
    return [by_id[i] for i in DOCUSAURUS_QUESTIONS]


async def run_phase(
    model: LoadModel, readers: int, one: Ask, pids: dict[str, int], questions: int
) -> tuple[list[Sample], dict[str, Any]]:
    """One phase: `readers` readers asking one way under `model`, with each process's CPU time
    (the bench process, `driver`, counts only its own: its children are the other processes)."""

    def cpu_now() -> dict[str, float]:
        return {n: cpu_seconds(pid, children=n != "driver") for n, pid in pids.items()}

    load_before = load()
    cpu_before = cpu_now()
    started = time.perf_counter()
    samples = await model.run(readers, questions, one)
    wall = time.perf_counter() - started
    cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_now().items()}
    return samples, phase_info(
        samples, wall_s=wall, load_before=load_before, load_after=load(), cpu_s=cpu
    )


# --------------------------------------------------------------------------- the four ways


class Ways:
    def __init__(
        self,
        *,
        llm_url: str,
        api_url: str,
        sync_url: str,
        floor_dir: Path,
        site: Path,
        embedder: str,
        questions: list[str],
    ) -> None:
        from openai import AsyncOpenAI

        from ingestion_jobs.embedding import get_embedder
        from shared.settings import EmbedderKind, Settings
        from shared.vectorstore import open_store
        from worker.retrieval import Retriever

        self.settings = Settings(
            data_dir=floor_dir,
            embedder=EmbedderKind(embedder),
            site_dir=site,
            llm_base_url=llm_url,
            llm_api_key="bench-key",
            llm_model="fake-model",
        )
        self.retriever = Retriever(
            open_store(self.settings), get_embedder(self.settings), self.settings.collection
        )
        self.api_url, self.sync_url = api_url, sync_url
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000)
        self.http = httpx.AsyncClient(timeout=120, limits=limits)
        self.llm = AsyncOpenAI(base_url=llm_url, api_key="bench-key", max_retries=0, timeout=120)
        self.questions = questions
        self.tool_outputs = [self._tool_output(q) for q in questions]

    def _tool_output(self, question: str) -> str:
        from worker.agent import format_passages

        hits = self.retriever.search(
            question, limit=self.settings.retrieval_limit, site=self.settings.site_name
        )
        return format_passages([(n, hit) for n, hit in enumerate(hits, start=1)])

    async def llm_own(self, q: int) -> Sample:
        """The two completions the agent makes, with the plain client: the LLM's own time."""
        from worker.agent import INSTRUCTIONS, search_docs

        tools: Any = [
            {
                "type": "function",
                "function": {
                    "name": search_docs.name,
                    "description": search_docs.description,
                    "parameters": search_docs.params_json_schema,
                },
            }
        ]
        messages: list[Any] = [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": self.questions[q]},
        ]
        started = time.perf_counter()
        call_id, name, arguments = "", "", ""
        stream = await self.llm.chat.completions.create(
            model="fake-model", messages=messages, tools=tools, stream=True
        )
        async for chunk in stream:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call_id = call.id or call_id
                if call.function:
                    name = call.function.name or name
                    arguments += call.function.arguments or ""
        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": self.tool_outputs[q]},
        ]
        ttft = None
        stream = await self.llm.chat.completions.create(
            model="fake-model", messages=messages, tools=tools, stream=True
        )
        async for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - started
        return Sample(q, time.perf_counter() - started, ttft)

    async def floor(self, q: int) -> Sample:
        """`answer_question` in this process: the agent and retrieval, nothing around them."""
        from shared.job_models import ChatRequest
        from worker.chat import answer_question

        started = time.perf_counter()
        ttft: list[float] = []

        async def on_token(_delta: str) -> None:
            if not ttft:
                ttft.append(time.perf_counter() - started)

        request = ChatRequest(message=self.questions[q], session_id=uuid.uuid4())
        answer = await answer_question(
            request, settings=self.settings, retriever=self.retriever, on_token=on_token
        )
        assert not answer.refused, answer
        return Sample(q, time.perf_counter() - started, ttft[0] if ttft else None)

    async def sync(self, q: int) -> Sample:
        started = time.perf_counter()
        response = await self.http.post(
            f"{self.sync_url}/chat", json={"message": self.questions[q]}
        )
        response.raise_for_status()
        total = time.perf_counter() - started
        return Sample(q, total, total, ok=not response.json()["refused"])

    async def stack(self, q: int) -> Sample:
        """POST /v1/chat, then follow events_url by SSE until `done`."""
        started = time.perf_counter()
        response = await self.http.post(
            f"{self.api_url}/v1/chat", json={"message": self.questions[q]}
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/chat {response.status_code}")
        submit = time.perf_counter() - started
        events_url = response.json()["events_url"]
        return await follow_answer(self.http, f"{self.api_url}{events_url}", q, started, submit)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.llm.close()


# --------------------------------------------------------------------------- main


async def measure(
    ways: Ways,
    levels: list[int],
    model: LoadModel,
    phases: list[str],
    pids: dict[str, int],
    profile: Callable[[], Any],
    rss: RssSampler,
) -> dict[str, Any]:
    ways_by_name: dict[str, Ask] = {
        "llm": ways.llm_own,
        "floor": ways.floor,
        "sync": ways.sync,
        "stack": ways.stack,
    }
    await asyncio.sleep(2)  # the processes idle, as started
    for name in phases:  # warm every path: connections, imports, first agent run
        for q in range(2):
            await ways_by_name[name](q)
    rss.label = "idle (warmed up)"
    await asyncio.sleep(3)
    n = len(ways.questions)
    results: dict[str, Any] = {}
    for readers in levels:
        level: dict[str, Any] = {}
        rss.label = f"llm c={readers}"
        llm_samples, level["llm"] = await run_phase(model, readers, ways.llm_own, pids, n)
        llm_total, llm_ttft = llm_medians(llm_samples)
        for name in phases:
            if name == "llm":
                continue
            last = name == "stack" and readers == max(levels)
            rss.label = f"{name} c={readers}"
            with profile() if last else _nothing():
                samples, info = await run_phase(model, readers, ways_by_name[name], pids, n)
            info["overhead"] = overheads(samples, llm_total, llm_ttft)
            level[name] = info
            print(phase_line(readers, name, info), file=sys.stderr)
        print(phase_line(readers, "llm", level["llm"]), file=sys.stderr)
        results[str(readers)] = level
    rss.label = "idle (after the load)"
    await asyncio.sleep(3)
    return results


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phases", default="llm,floor,sync,stack")
    parser.add_argument(
        "--think",
        metavar="LOW-HIGH",
        help="think time: each reader reads an answer for LOW-HIGH seconds (uniform, seeded) "
        "before the next question; without it, the saturating closed loop",
    )
    parser.add_argument("--seed", type=int, default=19, help="seed of the think times")
    parser.add_argument(
        "--site",
        choices=sorted(SITES),
        default="sample",
        help="sample: examples/sample-site; docusaurus: ../shared/corpora/docusaurus-docs",
    )
    parser.add_argument(
        "--embedder",
        choices=["hash", "bundled"],
        default="hash",
        help="the index's and the worker's embedder (bundled: the offline model)",
    )
    parser.add_argument("--worker-pool", default="threads")
    parser.add_argument("--worker-concurrency", type=int, default=100)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--api-args", default="", help="extra uvicorn arguments for the API")
    parser.add_argument(
        "--token-events",
        choices=["coalesced", "per-token"],
        default="coalesced",
        help="per-token: the worker writes one event per token delta (before TokenRelay)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the logs and profiles")
    parser.add_argument("--out", type=Path, default=RESULTS / "chat_load.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    phases = args.phases.split(",")
    model: LoadModel = ClosedLoop(rounds=args.rounds)
    if args.think:
        low, high = parse_think(args.think)
        model = ThinkTime(rounds=args.rounds, low_s=low, high_s=high, seed=args.seed)
    site = SITES[args.site]
    questions = questions_for(args.site)
    command = "uv run python -m bench.chat_load " + " ".join(sys.argv[1:] if argv is None else argv)
    measured = machine()  # the commit as the processes start (a rebase during a run moves HEAD)

    with (
        throwaway_postgres() as database_url,
        bench_processes(database_url, keep=args.keep) as procs,
    ):
        started = time.perf_counter()
        index_site(procs.tmp / "floor", site, embedder=args.embedder)
        index_s = time.perf_counter() - started
        for name in ("worker", "sync"):
            copy_index(procs.tmp / "floor", procs.tmp / name)
        site_env = {"BOOKCHAT_SITE_DIR": str(site), "BOOKCHAT_EMBEDDER": args.embedder}
        llm_url = f"{start_fake_llm(procs)}"
        api_url = start_api(
            procs, workers=args.api_workers, extra=args.api_args.split(), env=site_env
        )
        start_chat_worker(
            procs,
            data_dir=procs.tmp / "worker",
            pool=args.worker_pool,
            concurrency=args.worker_concurrency,
            celery=[PY, "-c", PER_TOKEN_WORKER] if args.token_events == "per-token" else None,
            env={**site_env, **llm_env(llm_url)},
        )
        sync_url = start_sync_baseline(
            procs, data_dir=procs.tmp / "sync", env={**site_env, **llm_env(llm_url)}
        )
        pids = {name: pid for name, pid in procs.pids().items() if name != "redis"}
        pids["driver"] = os.getpid()
        profiles: dict[str, Any] = {}

        @contextmanager
        def profile() -> Iterator[None]:
            if not args.profile:
                yield
                return
            with profiling(procs, ["api", "worker"], procs.tmp) as paths:
                yield
            for name, path in paths.items():
                profiles[name] = top_frames(path)

        async def go(rss: RssSampler) -> dict[str, Any]:
            ways = Ways(
                llm_url=llm_url,
                api_url=api_url,
                sync_url=sync_url,
                floor_dir=procs.tmp / "floor",
                site=site,
                embedder=args.embedder,
                questions=questions,
            )
            try:
                return await measure(ways, levels, model, phases, pids, profile, rss)
            finally:
                await ways.aclose()

        rss_pids = {name: pids[name] for name in ("api", "worker", "sync")}
        try:
            with RssSampler(rss_pids, interval_s=0.25, label="idle (started)") as rss:
                results = asyncio.run(go(rss))
        except BaseException:
            print(procs.log("worker")[-3000:], file=sys.stderr)
            raise
        rss_report = rss.report()
        redis_url = procs.redis_url
    report = {
        "benchmark": "chat_load",
        "command": command,
        "machine": measured,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "llm": {"latency_first_token_s": LATENCY_FIRST_TOKEN, "tokens_per_s": TOKENS_PER_S},
        "setup": {
            "embedder": args.embedder,
            "site": f"{args.site} ({site.name})",
            "questions": len(questions),
            "index_s": round(index_s, 1),
            "store": "qdrant edge",
            "database": "postgres (throwaway db)",
            "redis": redis_url,
            "worker": f"celery -P {args.worker_pool} -c {args.worker_concurrency} -Q chat",
            "token_events": args.token_events,
            "api": f"uvicorn --workers {args.api_workers} {args.api_args}".strip(),
            "rounds_per_reader": args.rounds,
            "load_model": model.describe(),
        },
        "results": results,
        "rss": rss_report,
        "profiles": profiles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


__all__ = ["Ways", "main"]

if __name__ == "__main__":
    main()
