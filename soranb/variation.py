"""Variation grids: prompts x prompt variants x models x sizes x lengths, planned and priced before anything starts.

    plan = plan_variations(["a fox in snow"], models=["sora-2", "sora-2-pro"], seconds=[4, 8])
    plan.cost                        # the whole matrix at list prices
    service.vary(...)                # the records, in matrix order (`plan.cells` order)

The matrix order is prompts, then variants, then models, then sizes, then seconds (the last varies
fastest). A combination the catalog does not offer (a size only `sora-2-pro` has, asked of `sora-2`)
is a cell that says why and is not made; every other mistake is refused before anything starts.
Cells are made as one batch (`soranb.batch`) under the plan's key, so running the same grid again
returns the same records instead of paying again; pass another `key` for fresh takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import catalog
from .batch import BatchLine, check_lines
from .errors import RequestInvalid
from .images import FitMode
from .report import esc, format_cost
from .request import GenerationRequest, ImageInput

__all__ = ["VariationCell", "VariationPlan", "apply_variant", "plan_variations"]

VARIANT_SLOT = "{variant}"


def apply_variant(prompt: str, variant: str) -> str:
    """The prompt with a variant: put where the prompt says `{variant}`, else appended after a comma."""
    if VARIANT_SLOT in prompt:
        return prompt.replace(VARIANT_SLOT, variant).strip()
    return f"{prompt}, {variant}" if variant.strip() else prompt


@dataclass(frozen=True)
class VariationCell:
    """One combination of the matrix; `request` is None when the catalog does not offer it (`problem` says why)."""

    prompt: str  # the prompt as given, before the variant
    variant: str
    model: str
    size: str
    seconds: int
    request: GenerationRequest | None
    problem: str | None = None

    @property
    def cost(self) -> Decimal:
        return self.request.cost if self.request is not None else Decimal(0)


@dataclass(frozen=True)
class VariationPlan:
    """The whole matrix before it starts: its cells in order, its cost, which settings vary."""

    key: str
    prompts: tuple[str, ...]
    variants: tuple[str, ...]
    models: tuple[str, ...]
    sizes: tuple[str, ...]
    seconds: tuple[int, ...]
    cells: tuple[VariationCell, ...]

    @property
    def made(self) -> tuple[VariationCell, ...]:
        """The cells that will be made, in matrix order (what `service.vary` returns records for)."""
        return tuple(c for c in self.cells if c.request is not None)

    @property
    def requests(self) -> list[GenerationRequest]:
        return [c.request for c in self.made if c.request is not None]

    @property
    def cost(self) -> Decimal:
        return sum((c.cost for c in self.cells), Decimal(0))

    @property
    def varied(self) -> dict[str, tuple[Any, ...]]:
        """The settings that take more than one value: the grid's rows and columns."""
        axes: dict[str, tuple[Any, ...]] = {
            "prompt": self.prompts,
            "variant": self.variants,
            "model": self.models,
            "size": self.sizes,
            "seconds": self.seconds,
        }
        return {name: values for name, values in axes.items() if len(values) > 1}

    def lines(self) -> list[BatchLine]:
        return [BatchLine(n, c.request) for n, c in enumerate(self.cells, start=1) if c.request is not None]

    def describe(self) -> str:
        shape = " x ".join(f"{len(v)} {name}s" for name, v in self.varied.items()) or "1 combination"
        skipped = len(self.cells) - len(self.made)
        note = f" ({skipped} not offered, skipped)" if skipped else ""
        return f"{shape}: {len(self.made)} video(s){note}, costing {format_cost(self.cost)} at list prices"

    def _repr_html_(self) -> str:
        """The matrix as a table, each cell's settings and price (everything escaped)."""
        rows = "".join(
            "<tr>"
            f"<td>{esc(apply_variant(c.prompt, c.variant))}</td><td>{esc(c.model)}</td><td>{esc(c.size)}</td>"
            f"<td>{esc(c.seconds)} s</td>"
            f"<td>{esc(format_cost(c.cost)) if c.request is not None else esc(c.problem or '')}</td>"
            "</tr>"
            for c in self.cells
        )
        return (
            f'<div class="soranb-variation-plan"><div>{esc(self.describe())}</div>'
            "<table><thead><tr><th>prompt</th><th>model</th><th>size</th><th>length</th><th>cost</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )


def _values(given: Iterable[Any] | Any, name: str) -> tuple[Any, ...]:
    items = [given] if isinstance(given, str | int) else list(given)
    values = tuple(dict.fromkeys(items))  # each once, in the order given
    if not values:
        raise RequestInvalid(name, f"no {name} given; give at least one")
    return values


def plan_variations(
    prompts: Iterable[str] | str,
    *,
    models: Iterable[str] | str = (catalog.DEFAULT_MODEL,),
    sizes: Iterable[str] | str = (catalog.DEFAULT_SIZE,),
    seconds: Iterable[int] | int = (catalog.DEFAULT_SECONDS,),
    variants: Iterable[str] | str = ("",),
    image: ImageInput | None = None,
    fit: FitMode | None = None,
    key: str = "vary",
) -> VariationPlan:
    """Every combination in matrix order; refuses (naming each problem) anything but an unoffered size."""
    axes = (
        _values(prompts, "prompts"),
        _values(variants, "variants"),
        _values(models, "models"),
        _values(sizes, "sizes"),
        tuple(int(s) for s in _values(seconds, "seconds")),
    )
    cells: list[VariationCell] = []
    for prompt in axes[0]:
        for variant in axes[1]:
            for model in axes[2]:
                for size in axes[3]:
                    for length in axes[4]:
                        spec = catalog.MODELS.get(model)
                        if (
                            spec is not None
                            and size not in spec.sizes
                            and any(size in m.sizes for m in catalog.MODELS.values())
                        ):
                            why = f"{model} does not offer {size}"
                            cells.append(VariationCell(prompt, variant, model, size, length, None, why))
                            continue
                        request = GenerationRequest(apply_variant(prompt, variant), model, size, length, image, fit)
                        cells.append(VariationCell(prompt, variant, model, size, length, request))
    plan = VariationPlan(key, *axes, cells=tuple(cells))
    if not plan.made:
        raise RequestInvalid("size", "no combination is offered: every size asked is one its model lacks")
    check_lines(plan.lines(), "the variation grid", "cell")  # everything else is refused, naming the cell
    return plan
