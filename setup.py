"""Build hook: ship ``draem_plugin_autoload.pth`` at the root of site-packages, in regular and editable installs.

The ``.pth`` line imports the tiny ``_draem_plugin_autoload`` module, which imports ``draem_plugin`` (registering
DraemPlugin with anomalib) once a program imports ``anomalib.models``. Everything else is in ``setup.cfg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "draem_plugin_autoload.pth"
PTH_TEXT = (Path(__file__).parent / PTH).read_bytes()


class BuildPyWithPth(build_py):
    """``build_py`` that also writes the ``.pth`` hook into the wheel's root."""

    def run(self) -> None:
        super().run()
        (Path(self.build_lib) / PTH).write_bytes(PTH_TEXT)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


class EditableWheelWithPth(editable_wheel):
    """``pip install -e .``: add the same ``.pth`` to the editable wheel (setuptools only adds its own finder)."""

    def _select_strategy(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        strategy = super()._select_strategy(*args, **kwargs)

        class WithPth:
            def __enter__(self) -> WithPth:
                strategy.__enter__()
                return self

            def __exit__(self, *exc: object) -> Any:  # noqa: ANN401
                return strategy.__exit__(*exc)

            def __call__(self, wheel: Any, files: list[str], mapping: dict[str, str]) -> None:  # noqa: ANN401
                strategy(wheel, files, mapping)
                wheel.writestr(PTH, PTH_TEXT)

        return WithPth()


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
