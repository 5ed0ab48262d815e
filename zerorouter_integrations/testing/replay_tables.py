"""The replay server's recorded answers: routing tables indexed by prompt text, loaded lazily."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.extras import need

__all__ = ["RecordedAnswers", "prompt_key", "table_dir"]

# the logger of the replay server as a whole, whichever of its modules logs
logger = logging.getLogger("zerorouter_integrations.testing.replay")


def prompt_key(text: str) -> bytes:
    """The lookup key of a prompt text (stripped; a 12-byte hash)."""
    return hashlib.blake2b(text.strip().encode("utf-8", "surrogatepass"), digest_size=12).digest()


def table_dir(d: str | Path) -> Path:
    """A routing-table folder, or the name of a table in the shared data folder (``find_data_dir``)."""
    path = Path(d)
    if (path / "prompts.parquet").is_file():
        return path
    if len(path.parts) == 1 and not path.exists():
        try:
            return find_data_dir(table=str(path))
        except SchemaError as exc:
            raise SchemaError(
                f"table dir {str(d)!r} is neither a routing-table folder nor a table of the shared data: {exc}"
            ) from None
    raise SchemaError(
        f"table dir {str(d)!r} has no prompts.parquet; expected a routing-table folder such as "
        "../shared/data/routerbench_subset, or a table name such as 'routerbench_subset' "
        "(looked up in $ZEROROUTER_DATA or ../shared/data)"
    )


class RecordedAnswers:
    """Index prompt text hash → prompt id, and (prompt id, model) → recorded response."""

    _ALT_COLUMNS = ("question_only", "question", "query")

    def __init__(self, table_dirs: Sequence[str | Path]):
        self.dirs = [table_dir(d) for d in table_dirs]
        self._lock = threading.Lock()
        self.loaded = threading.Event()
        self._error: BaseException | None = None
        self.by_text: dict[bytes, list[str]] = {}
        self.answers: dict[str, dict[str, str]] = {}
        self.models: list[str] = []

    def start_background_load(self) -> None:
        """Load the tables in a daemon thread (``loaded`` is set when done, failed or not)."""
        threading.Thread(target=self.ensure_loaded, name="replay-table-load", daemon=True).start()

    def ensure_loaded(self) -> None:
        """Load the tables now unless they are loaded (or being loaded: then wait)."""
        if self.loaded.is_set():
            return
        with self._lock:
            if self.loaded.is_set():
                return
            try:
                self._load()
            except BaseException as exc:
                self._error = exc
                logger.exception("replay server: loading tables %s failed", self.dirs)
            finally:
                self.loaded.set()

    def _load(self) -> None:
        need("tables", "the replay server's routing tables")
        import pyarrow.parquet as pq  # lazy: ~0.5 s

        models: dict[str, None] = {}
        for d in self.dirs:
            prefix = f"{d.name}::"
            prompts = pq.read_table(d / "prompts.parquet", columns=["prompt_id", "prompt"]).to_pydict()
            for pid, text in zip(prompts["prompt_id"], prompts["prompt"]):
                if isinstance(text, str):
                    self._index(text, prefix + str(pid))
            extras = d / "prompt_extras.parquet"
            if extras.is_file():
                cols = [c for c in self._ALT_COLUMNS if c in pq.read_schema(extras).names]
                if cols:
                    ex = pq.read_table(extras, columns=["prompt_id", *cols]).to_pydict()
                    for col in cols:
                        for pid, text in zip(ex["prompt_id"], ex[col]):
                            if isinstance(text, str) and text.strip():
                                self._index(text, prefix + str(pid))
            oe = d / "outcome_extras.parquet"
            if oe.is_file() and "response" in pq.read_schema(oe).names:
                rows = pq.read_table(oe, columns=["prompt_id", "model", "response"]).to_pydict()
                for pid, model, resp in zip(rows["prompt_id"], rows["model"], rows["response"]):
                    if isinstance(resp, str):
                        self.answers.setdefault(prefix + str(pid), {})[model] = resp
                        models[model] = None
            else:
                logger.info("replay server: %s has no recorded responses; prompts only", d)
        self.models = list(models)

    def _index(self, text: str, pid: str) -> None:
        pids = self.by_text.setdefault(prompt_key(text), [])
        if pid not in pids:
            pids.append(pid)

    def lookup(self, model: str, texts: Iterable[str]) -> str | None:
        """The recorded answer of ``model`` to the first of ``texts`` that has one, else None."""
        self.ensure_loaded()
        for text in texts:
            for pid in self.by_text.get(prompt_key(text), ()):
                answer = self.answers.get(pid, {}).get(model)
                if answer is not None:
                    return answer
        return None
