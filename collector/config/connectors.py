"""The config checks of connectors: each one-line problem names the pipeline entry (or connector) it is about.

A connector must be used on both sides (as an exporter of one pipeline and a
receiver of another), join signals it supports, have an id no receiver or
exporter shares (a pipeline could not tell them apart), and the pipelines it
joins must not form a cycle: the OpenTelemetry Collector refuses all four, and
so does this one.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.component import ComponentID, ConnectorFactory
from collector.config.problems import ConfigProblem, join_path
from collector.pipeline_graph import PipelineGraph, PipelineLike
from collector.signals import SIGNALS, Signal

Side = tuple[str, str, str]  # (section of the pipeline, "exporter"/"receiver", what the other side is)
_EXPORTER: Side = ("exporters", "exporter", "receiver")
_RECEIVER: Side = ("receivers", "receiver", "exporter")


def connector_problems(
    pipelines: Mapping[str, PipelineLike],
    connectors: Mapping[ComponentID, ConnectorFactory[object]],
    declared: Mapping[str, set[ComponentID]],
) -> list[ConfigProblem]:
    """Every connector mistake of ``pipelines``; ``connectors`` are the valid connectors' factories by id,
    ``declared`` the ids each section of the YAML defines."""
    problems = []
    for cid in sorted(declared.get("connectors", set())):
        for section in ("receivers", "exporters"):
            if cid in declared.get(section, set()):
                kind = section[:-1]
                problems.append(
                    ConfigProblem(
                        join_path("connectors", str(cid)),
                        f'"{cid}" is also the id of {kind} {join_path(section, str(cid))}; '
                        "a pipeline could not tell them apart: rename one",
                    )
                )
    problems.extend(_side_problems(pipelines, connectors, _EXPORTER))
    problems.extend(_side_problems(pipelines, connectors, _RECEIVER))
    graph = PipelineGraph(pipelines, connectors)
    for cycle in graph.cycles():
        first, connector = cycle[0], ComponentID.parse(cycle[1])
        index = pipelines[first].exporters.index(connector)
        problems.append(
            ConfigProblem(
                f"service.pipelines.{first}.exporters[{index}]",
                f"the pipelines form a cycle through connectors ({' → '.join(cycle)}); data would go round forever",
            )
        )
    return problems


def _side_problems(
    pipelines: Mapping[str, PipelineLike], connectors: Mapping[ComponentID, ConnectorFactory[object]], side: Side
) -> list[ConfigProblem]:
    """A connector listed on one side of a pipeline with no supported partner on the other side."""
    section, role, other_role = side
    other_section = "receivers" if section == "exporters" else "exporters"
    problems = []
    for name, pipeline in pipelines.items():
        for index, cid in enumerate(getattr(pipeline, section)):
            factory = connectors.get(cid)
            if factory is None:
                continue
            path = f"service.pipelines.{name}.{section}[{index}]"
            own: Signal = pipeline.signal
            # The signals it can join with ``own`` on this side, and those the pipelines on the other side carry.
            partners = [
                s for s in SIGNALS if (factory.supports(own, s) if role == "exporter" else factory.supports(s, own))
            ]
            others = {p.signal for p in pipelines.values() if cid in getattr(p, other_section)}
            if not partners:
                verb = "take" if role == "exporter" else "emit"
                problems.append(
                    ConfigProblem(path, f'connector "{cid}" does not {verb} {own}; it joins {factory.pairs_text()}')
                )
            elif not others:
                wanted = " or ".join(partners)
                problems.append(
                    ConfigProblem(
                        path,
                        f'connector "{cid}" is used as {role} only; list it as {other_role} of a {wanted} pipeline '
                        f"({other_section})",
                    )
                )
            elif not others & set(partners) and others & _valid_on(factory, other_role):
                # (When no pipeline on the other side carries a signal it supports there, that side says so.)
                problems.append(
                    ConfigProblem(
                        path,
                        f'connector "{cid}" as {role} of a {own} pipeline has no {other_role} pipeline of a signal it '
                        f"joins to {own} (it joins {factory.pairs_text()}; its {other_role} pipelines carry "
                        f"{', '.join(sorted(others))})",
                    )
                )
    return problems


def _valid_on(factory: ConnectorFactory[object], role: str) -> set[Signal]:
    """The signals of the pipelines ``factory`` may be an exporter (``role``) or a receiver of."""
    return {signal for signal in SIGNALS if (factory.takes(signal) if role == "exporter" else factory.emits(signal))}
