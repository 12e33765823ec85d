"""A run directory: where a benchmark run keeps what it has done, so it can resume.

    DIR/run.json          the run: suite (id, version, digest, source), judge, attempts,
                          and each epoch's run id, target, model, agent, start and end
    DIR/samples.jsonl     one ``SampleRecord`` per judged sample, every epoch, appended;
                          a sample retried (``eval run --retry-errors``) has a newer
                          line that supersedes the older: the last line per sample wins
    DIR/result-E.json     the ``EvalResult`` of epoch E, once it has finished
    DIR/report.html       the report over every finished epoch

A sample is *finished* once its line is on disk: ``SampleLog.append`` writes a batch of
lines, flushes and fsyncs before returning. A run killed at any point (SIGKILL
included) loses at most the samples whose batch had not been fsynced; on restart the
samples already in the file are skipped, and a torn last line (the write the kill cut
short) is cut off before anything new is appended. ``run.json`` is replaced atomically
(write a temporary file, fsync, rename).

A directory holds one configuration: the same suite digest, judge and attempts for
every epoch, so epochs can be compared (the Drift-Coefficient needs the same probes
judged the same way). Anything else is refused with a sentence saying what differs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.errors import ConfigError
from custodes.evals.rails import failed
from custodes.evals.results import EvalResult, JudgeInfo, SampleRecord, SuiteRef
from custodes.evals.suite import EvalError, Suite, load_suite

__all__ = [
    "RUN_FORMAT",
    "EpochInfo",
    "RunDir",
    "RunManifest",
    "SampleLog",
    "done_samples",
    "latest",
    "new_run_id",
]

RUN_FORMAT = "custodes.eval-run/v1"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(4)


class EpochInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    target: str
    model: str | None = None
    agent_id: str | None = None
    started_at: datetime
    finished_at: datetime | None = None


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["custodes.eval-run/v1"] = "custodes.eval-run/v1"
    suite: SuiteRef
    suite_source: str
    judge: JudgeInfo
    attempts: int = Field(ge=1)
    source: Literal["custodes", "inspect", "agentdojo"] = "custodes"
    epochs: dict[int, EpochInfo] = Field(default_factory=dict)


class SampleLog:
    """``samples.jsonl``: append-only, fsynced, tolerant of a torn last line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[SampleRecord]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) != len(data):  # a write cut short by a kill: drop it for good
            with self.path.open("r+b") as handle:
                handle.truncate(len(whole))
                os.fsync(handle.fileno())
        return [self._parse(n, line) for n, line in enumerate(whole.splitlines(), 1) if line]

    def _parse(self, number: int, line: bytes) -> SampleRecord:
        try:
            return SampleRecord.model_validate_json(line)
        except ValidationError as exc:
            raise EvalError(
                f"{self.path}, line {number}: not a sample record ({exc.error_count()} "
                "problems); the run directory is damaged",
                code="bad_sample_log",
            ) from None

    def append(self, records: Sequence[SampleRecord]) -> None:
        if not records:
            return
        lines = b"".join(r.model_dump_json().encode() + b"\n" for r in records)
        with self.path.open("ab") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


class RunDir:
    """A run directory; ``create_or_resume`` to run in it, ``open`` to read it."""

    def __init__(self, path: Path, manifest: RunManifest) -> None:
        self.path = path
        self.manifest = manifest
        self.samples = SampleLog(path / "samples.jsonl")

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        root = Path(path)
        file = root / "run.json"
        try:
            manifest = RunManifest.model_validate_json(file.read_bytes())
        except OSError:
            raise ConfigError(f"{root} is not a run directory (no readable run.json)") from None
        except ValidationError as exc:
            raise ConfigError(f"{file} is damaged: {exc.error_count()} problems") from None
        return cls(root, manifest)

    @classmethod
    def create_or_resume(
        cls,
        path: str | Path,
        suite: Suite,
        *,
        suite_source: str,
        judge: JudgeInfo,
        attempts: int,
        source: Literal["custodes", "inspect"] = "custodes",
    ) -> RunDir:
        root = Path(path)
        wanted = RunManifest(
            suite=SuiteRef(id=suite.id, version=suite.version, digest=suite.digest),
            suite_source=suite_source,
            judge=judge,
            attempts=attempts,
            source=source,
        )
        if not (root / "run.json").exists():
            root.mkdir(parents=True, exist_ok=True)
            run = cls(root, wanted)
            run._save()
            return run
        run = cls.open(root)
        run._check_same(wanted)
        return run

    def _check_same(self, wanted: RunManifest) -> None:
        have = self.manifest
        for what, mine, theirs in (
            ("suite digest", have.suite.digest, wanted.suite.digest),
            ("judge", have.judge.label, wanted.judge.label),
            ("attempts", have.attempts, wanted.attempts),
        ):
            if mine != theirs:
                raise ConfigError(
                    f"{self.path} holds a run with {what} {mine}, not {theirs}; "
                    "use another --out directory or the same settings"
                )

    def _save(self) -> None:
        _write_atomic(self.path / "run.json", self.manifest.model_dump_json(indent=1))

    def epochs(self, *, finished: bool = False) -> list[int]:
        return sorted(
            e for e, info in self.manifest.epochs.items() if info.finished_at or not finished
        )

    def epoch(self, epoch: int) -> EpochInfo:
        try:
            return self.manifest.epochs[epoch]
        except KeyError:
            known = ", ".join(map(str, self.epochs())) or "none"
            raise ConfigError(f"{self.path} has no epoch {epoch} (epochs: {known})") from None

    def begin_epoch(
        self, epoch: int, *, target: str, model: str | None, agent_id: str | None
    ) -> EpochInfo:
        """Start an epoch, or resume it with the same model and agent."""
        info = self.manifest.epochs.get(epoch)
        if info is not None and (info.model, info.agent_id) != (model, agent_id):
            raise ConfigError(
                f"epoch {epoch} in {self.path} ran model {info.model!r} for agent "
                f"{info.agent_id!r}; resume it with the same --model and --agent-id, "
                "or run another --epoch"
            )
        if info is None:
            info = EpochInfo(
                run_id=new_run_id(),
                target=target,
                model=model,
                agent_id=agent_id,
                started_at=datetime.now(UTC),
            )
        self._set_epoch(epoch, info.model_copy(update={"target": target, "finished_at": None}))
        return self.manifest.epochs[epoch]

    def finish_epoch(self, epoch: int) -> EpochInfo:
        info = self.epoch(epoch).model_copy(update={"finished_at": datetime.now(UTC)})
        self._set_epoch(epoch, info)
        return info

    def _set_epoch(self, epoch: int, info: EpochInfo) -> None:
        epochs = {**self.manifest.epochs, epoch: info}
        self.manifest = self.manifest.model_copy(update={"epochs": epochs})
        self._save()

    def records(self, epoch: int | None = None) -> list[SampleRecord]:
        """Each sample's latest record (a retried sample's newer line supersedes it)."""
        records = latest(self.samples.load())
        return records if epoch is None else [r for r in records if r.epoch == epoch]

    def suite(self) -> Suite:
        """The suite this run used, checked against the digest it recorded."""
        suite = load_suite(self.manifest.suite_source)
        if suite.digest != self.manifest.suite.digest:
            raise ConfigError(
                f"suite {self.manifest.suite_source!r} has changed since {self.path} ran "
                f"(digest {suite.digest}, the run used {self.manifest.suite.digest})"
            )
        return suite

    def write_result(self, result: EvalResult) -> Path:
        path = self.path / f"result-{result.epoch}.json"
        _write_atomic(path, result.model_dump_json(indent=1))
        return path

    def result(self, epoch: int) -> EvalResult:
        path = self.path / f"result-{epoch}.json"
        try:
            return EvalResult.model_validate_json(path.read_bytes())
        except OSError:
            raise ConfigError(
                f"epoch {epoch} in {self.path} has not finished (no {path.name}); "
                "resume it with custodes eval run"
            ) from None

    def results(self) -> list[EvalResult]:
        return [self.result(e) for e in self.epochs(finished=True)]


def latest(records: Iterable[SampleRecord]) -> list[SampleRecord]:
    """The last record of each (epoch, sample id), in the order samples first appeared."""
    last: dict[tuple[int, str], SampleRecord] = {}
    for record in records:
        last[(record.epoch, record.sample_id)] = record
    return list(last.values())


def done_samples(
    records: Iterable[SampleRecord], epoch: int, *, retry_errors: bool = False
) -> set[str]:
    """The samples of ``epoch`` not to send again: all recorded ones, or with
    ``retry_errors`` those whose latest record is neither a target error nor
    undetermined."""
    mine = [r for r in latest(records) if r.epoch == epoch]
    return {r.sample_id for r in mine if not (retry_errors and failed(r))}
