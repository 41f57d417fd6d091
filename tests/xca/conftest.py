"""The province under test: HDIRS, SWODIN and NEODIN as real `xds serve` processes on free ports,
loaded once per session with a synthetic province through ITI-8, C-STORE/RAD-68 and ITI-41."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import LiveNode, live_node
from xca import demo, loader
from xds import config
from xds.config import NodeConfig

COMMUNITIES = ("hdirs", "swodin", "neodin")


@dataclass
class Dir:
    node: LiveNode
    cfg: NodeConfig
    config_path: Path

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def home(self) -> str:
        return self.cfg.home_community_id

    @property
    def respond_url(self) -> str:
        return self.node.url("/xca/respond")


@dataclass
class ProvinceUnderTest:
    dirs: dict[str, Dir]  # by community name (HDIRS, SWODIN, NEODIN)
    data: demo.Province

    @property
    def everywhere(self) -> demo.Patient:
        """The patient with exams in all three DIRs."""
        return next(p for p in self.data.patients if len(self.data.communities_of(p)) == 3)

    def exams_in(self, community: str, patient: demo.Patient | None = None) -> list[demo.Exam]:
        return [e for e in self.data.exams if e.community == community and (patient is None or e.patient is patient)]


@pytest.fixture(scope="session")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvinceUnderTest]:
    with contextlib.ExitStack() as stack:
        tmps = {name: tmp_path_factory.mktemp(name) for name in COMMUNITIES}
        starting = {
            name: live_node(tmp, f"conf/{name}.toml", overrides={"imaging": {"study_quiet_seconds": 1}}, start_timeout=120)
            for name, tmp in tmps.items()
        }

        def start(name: str) -> LiveNode:
            node = starting[name].__enter__()
            stack.push(starting[name].__exit__)
            return node

        with ThreadPoolExecutor(len(COMMUNITIES)) as pool:  # the three start together
            nodes = dict(zip(COMMUNITIES, pool.map(start, COMMUNITIES), strict=True))
        dirs: dict[str, Dir] = {}
        for name, node in nodes.items():
            cfg = config.load(tmps[name] / "node.toml", str(node.data_dir))
            dirs[cfg.name] = Dir(node, cfg, tmps[name] / "node.toml")
        data = demo.province(patients=4)
        targets = {name: loader.Target.from_config(d.cfg) for name, d in dirs.items()}
        asyncio.run(loader.load(targets, data, wait_manifests=60))
        yield ProvinceUnderTest(dirs, data)
