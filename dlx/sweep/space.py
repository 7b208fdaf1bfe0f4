"""The search space: Hydra's sweep syntax (`a,b,c`, `choice()`, `range()`, `glob()`, `interval()`,
`tag(log, ...)`) parsed by Hydra's own override parser into parameters Optuna can sample."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlx.errors import DlxError, did_you_mean

SWEEP_SYNTAX = (
    "Sweep values look like `key=a,b,c`, `key=choice(a,b)`, `key=range(1,5)`, `group=glob(pattern)`, "
    "`'key=interval(low,high)'` or `'key=tag(log, interval(1e-5, 1e-1))'` (`tag(int, ...)` for integers)."
)


TAGS = ("log", "int")  # what tag() may say: a log-scaled axis, whole numbers
# Settings the sweep itself reads from the base config (how trials rank; one process per trial): one value.
_RANKS = "it decides how the sweep ranks its trials"
_ONE_PROCESS = "dlx sweep trains each trial in one process (run trials side by side with `--jobs N`)"
NOT_SWEPT = {
    "trainer.monitor": _RANKS,
    "trainer.mode": _RANKS,
    "trainer.devices": _ONE_PROCESS,
    "trainer.num_nodes": _ONE_PROCESS,
}


@dataclass
class Parameter:
    """One swept setting: a list of choices, or a continuous interval."""

    name: str  # Optuna's parameter name: the key without +/++ (`optimizer.lr`, `model`)
    key: str  # the key as typed before '=' (`+model.dropout`, `model@foo`)
    choices: list[Any] | None = None  # JSON values Optuna stores
    choice_strings: list[str] | None = None  # each choice as typed in an override
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_discrete(self) -> bool:
        return self.choices is not None

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def override(self, value: Any) -> str:
        """The override that sets this parameter to ``value`` (a value Optuna sampled or stored)."""
        if self.choices is None:
            text = str(int(value)) if self.integer else repr(float(value))
            return f"{self.key}={text}"
        for choice, text in zip(self.choices, self.choice_strings or [], strict=True):
            if type(choice) is type(value) and choice == value:
                return f"{self.key}={text}"
        raise ValueError(f"{value!r} is not one of the choices of {self.name}")

    def values_to_check(self) -> list[Any]:
        """Values that, composed one at a time, show up a value the config refuses before any trial."""
        if self.choices is not None:
            return list(self.choices)
        return [self.low, self.high] if not self.integer else [int(self.low), int(self.high)]


@dataclass
class SweepRequest:
    """A `dlx sweep` command line taken apart."""

    base_overrides: list[str]  # passed to every trial unchanged
    parameters: list[Parameter]
    sweep_name: str | None  # `sweep=NAME`: a search space from configs/sweep/
    setting_overrides: list[str]  # `sweep.trials=30`: settings of the sweep itself


def split_sweep_arguments(arguments: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Take `sweep=NAME` and `sweep.key=value` out of the arguments: they belong to dlx sweep, not Hydra."""
    rest, settings, name = [], [], None
    for argument in arguments:
        if argument.startswith("sweep="):
            name = argument.partition("=")[2]
        elif argument.startswith("sweep."):
            settings.append(argument[len("sweep.") :])
        else:
            rest.append(argument)
    return rest, name, settings


def parse_search_space(overrides: list[str], config_dirs: list[Path]) -> tuple[list[str], list[Parameter]]:
    """Split overrides into the fixed ones and the swept parameters (a later sweep of a key wins)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    base: list[str] = []
    fixed: dict[str, str] = {}  # key -> the override that sets it to one value
    parameters: dict[str, Parameter] = {}
    for text in overrides:
        try:
            override = parser.parse_overrides([text])[0]
        except HydraException as error:
            raise DlxError(f"Cannot parse '{text}': {_hydra_reason(error)} {SWEEP_SYNTAX}") from None
        if not override.is_sweep_override():
            base.append(text)
            fixed[_name(override)] = text
            continue
        parameter = _parameter(override, text, config_dirs)
        if parameter.name in NOT_SWEPT:
            fix = (
                "Drop it: each trial trains in one process."
                if NOT_SWEPT[parameter.name] is _ONE_PROCESS
                else "Give it one value for the whole sweep (e.g. `trainer.monitor=val/acc "
                "trainer.mode=max`), or run one sweep per value."
            )
            raise DlxError(f"'{text}': {parameter.name} cannot be swept: {NOT_SWEPT[parameter.name]}. {fix}")
        parameters.pop(parameter.name, None)
        parameters[parameter.name] = parameter
    for name, parameter in parameters.items():
        if name in fixed:
            raise DlxError(
                f"{name} is both swept ('{parameter.key}=...') and set to one value ('{fixed[name]}'); the "
                "sweep would ignore the second. Keep one of them."
            )
    return base, list(parameters.values())


def _name(override: Any) -> str:
    """Optuna's parameter name for an override: the key without +/++, with its @package."""
    return override.key_or_group + (f"@{override.package}" if override.package else "")


def _hydra_reason(error: Exception) -> str:
    message = " ".join(str(error).split()).split(" See https://hydra.cc")[0]
    message = re.sub(r"^Error parsing override '.*?' ", "", message)
    return message.rstrip(".") + "."


def _parameter(override: Any, text: str, config_dirs: list[Path]) -> Parameter:
    from hydra.core.override_parser.types import Glob, IntervalSweep, QuotedString

    name = _name(override)
    key = override.get_key_element()
    value = override.value()
    tags = set(getattr(value, "tags", set()) or set())
    for tag in sorted(tags - set(TAGS)):
        raise DlxError(
            f"'{text}': tag({tag}, ...) is not a tag dlx sweep knows.{did_you_mean(tag, TAGS)} Tags: "
            f"log (a log-scaled axis), int (whole numbers), e.g. `'{key}=tag(log, interval(1e-5, 1e-1))'`."
        )
    if isinstance(value, IntervalSweep):
        low, high = float(value.start), float(value.end)
        integer = "int" in tags
        if not low < high:
            swapped = f"interval({value.end:g}, {value.start:g})"
            swapped = f"tag({', '.join(sorted(tags))}, {swapped})" if tags else swapped
            raise DlxError(
                f"'{text}': an interval needs low < high, got interval({value.start:g}, {value.end:g}). "
                f"Type e.g. `'{key}={swapped}'`."
                if low > high
                else f"'{text}': the interval is empty. Give two different bounds, or one value `{key}=x`."
            )
        if "log" in tags and low <= 0:
            raise DlxError(
                f"'{text}': a log-scaled interval needs a positive lower bound, got {value.start}. "
                f"Type e.g. `'{key}=tag(log, interval(1e-5, {value.end}))'`."
            )
        return Parameter(name, key, low=low, high=high, log="log" in tags, integer=integer)
    if isinstance(value, Glob):
        from dlx.config.compose import group_options

        options = group_options(override.key_or_group, config_dirs)
        if not options:
            raise DlxError(
                f"'{text}': glob() picks options of a config group, and '{override.key_or_group}' is not "
                "one. Type e.g. `model=glob(*)` or `optimizer=glob(adam*)`."
            )
        values = value.filter(options)
        strings = list(values)  # option names are file names: nothing to quote
    else:
        values = list(override.sweep_iterator())
        strings = list(override.sweep_string_iterator())
    if not values:
        raise DlxError(f"'{text}' has no values to try, so there is nothing to sweep. {SWEEP_SYNTAX}")
    choices = [
        _storable(v.text if isinstance(v, QuotedString) else v, s)
        for v, s in zip(values, strings, strict=True)
    ]
    if len(set(map(repr, choices))) < len(choices):
        raise DlxError(f"'{text}' names a value twice. List each value once.")
    return Parameter(name, key, choices=choices, choice_strings=strings, log="log" in tags)


def _storable(value: Any, text: str) -> Any:
    """Optuna stores None, bools, numbers and strings; a list or mapping is kept as it was typed."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return text


def grid_points(parameters: list[Parameter]) -> list[dict[str, Any]]:
    """Every combination of the choices, in the order they were typed."""
    names = [p.name for p in parameters]
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(p.choices for p in parameters))
    ]


def overrides_for(parameters: list[Parameter], params: dict[str, Any]) -> list[str]:
    return [parameter.override(params[parameter.name]) for parameter in parameters]


def overrides_to_check(parameters: list[Parameter]) -> Iterator[tuple[str, list[str]]]:
    """(the parameter being tried, overrides): first each parameter's first value, then every other value
    of one parameter at a time, so a value the config refuses is named before any trial starts."""
    first = {p.name: p.values_to_check()[0] for p in parameters}
    yield parameters[0].name, overrides_for(parameters, first)
    for parameter in parameters:
        for value in parameter.values_to_check()[1:]:
            yield parameter.name, overrides_for(parameters, first | {parameter.name: value})


def uses_log_axis(parameter: Parameter, values: list[Any]) -> bool:
    """A log axis when the parameter is tagged log, or its numeric values are spaced geometrically."""
    if parameter.log:
        return True
    numbers = sorted({float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if len(numbers) < 2 or numbers[0] <= 0:
        return False
    if len(numbers) == 2:
        return numbers[1] / numbers[0] >= 10
    linear = [b - a for a, b in itertools.pairwise(numbers)]
    logarithmic = [math.log(b / a) for a, b in itertools.pairwise(numbers)]
    return _spread(logarithmic) < _spread(linear)


def _spread(steps: list[float]) -> float:
    mean = sum(steps) / len(steps)
    return math.sqrt(sum((s - mean) ** 2 for s in steps) / len(steps)) / mean
