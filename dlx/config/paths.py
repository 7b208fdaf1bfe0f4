"""Where dlx's own configs and recipes live: inside the wheel, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path


def bundled_root() -> Path:
    """The folder holding ``configs/`` and ``recipes/``."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_bundled"
    return installed if (installed / "configs").is_dir() else package.parent


def configs_dir() -> Path:
    return bundled_root() / "configs"


def recipe_dirs(extra_dirs: list[Path]) -> list[Path]:
    """dlx's recipes first, then each user folder's ``recipes/`` (or the folder itself)."""
    folders = [bundled_root() / "recipes"]
    for folder in extra_dirs:
        folders.append(folder / "recipes" if (folder / "recipes").is_dir() else folder)
    return folders


def list_recipes(extra_dirs: list[Path] | None = None) -> dict[str, Path]:
    """Recipe name -> file; a user's recipe of the same name wins."""
    recipes: dict[str, Path] = {}
    for folder in recipe_dirs(extra_dirs or []):
        for path in sorted(folder.glob("*.yaml")):
            recipes[path.stem] = path
    return recipes
