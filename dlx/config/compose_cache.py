"""Composed configs kept on disk: Hydra's import and its YAML parsing cost about 0.3 s, most of what
`dlx config` and the first moment of `dlx train` spend. An entry's name is a hash of everything the
result depends on (dlx's version, the overrides, the config folders, and the size and modification time
of every YAML file in them), so an edited config file or another override is a new entry, never a stale
one. ``DLX_CACHE_DIR`` moves the cache; ``DLX_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dlx import __version__
from dlx.config.paths import configs_dir, recipe_dirs

KEEP = 256  # entries; older ones are removed


def cache_folder() -> Path | None:
    setting = os.environ.get("DLX_CACHE_DIR")
    if setting == "off":
        return None
    if setting:
        return Path(setting).expanduser() / "compose"
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "dlx" / "compose"


def entry_for(overrides: list[str], extra_dirs: list[Path]) -> Path | None:
    folder = cache_folder()
    if folder is None:
        return None
    files = []
    for root in [configs_dir(), *recipe_dirs(extra_dirs), *extra_dirs]:
        for path in sorted(root.rglob("*.yaml")):
            stat = path.stat()
            files.append([str(path), stat.st_mtime_ns, stat.st_size])
    code = Path(__file__).with_name("compose.py").stat().st_mtime_ns
    key = json.dumps([__version__, code, list(overrides), [str(d) for d in extra_dirs], files])
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def load(entry: Path | None) -> DictConfig | None:
    if entry is None or not entry.is_file():
        return None
    try:  # JSON, not YAML: read in half the time, and the values come back exactly
        cfg = OmegaConf.create(json.loads(entry.read_text(encoding="utf-8")))
    except Exception:  # a damaged entry is only a miss
        return None
    OmegaConf.set_struct(cfg, True)  # as Hydra's compose returns it
    return cfg


def store(entry: Path | None, cfg: DictConfig) -> None:
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(OmegaConf.to_container(cfg, resolve=False)), encoding="utf-8")
        os.replace(temporary, entry)
        entries = sorted(entry.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only or full home folder only costs speed
