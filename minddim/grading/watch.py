"""The package's own answer is not an answer: the watch that refuses an answer calling it.

The prompts say "do not call the minddim function of the same name", and the check enforces it.  For each question,
:func:`forbidden` lists the functions an answer must not call: the public minddim function of the question's name
(where one exists), the answer key's reference and the question's ``Spec.forbidden`` (the other package routes to the
same result, e.g. ``md.ddim_step`` with eta = 0 for the Euler step).  While the check runs the learner's function on a
case and compares what it returned (a generator's body runs there), :class:`CallWatch` is on:

- in the thread that runs the check, a call of a forbidden function counts when a frame of code outside the package,
  Python's standard library and the installed libraries stands between that call and the check.  The learner's
  function is always such a frame, so **every** forbidden call made while it runs counts, whether the learner's code
  makes it or a package function it calls makes it internally; the questions therefore forbid only functions no
  honest answer needs, directly or indirectly (tests/test_exercises_and_grader.py grades every solution notebook,
  under the watch, and asks full marks).  Calls the check makes itself (the reference, a custom checker's own work) have no such frame and do not
  count.  Code compiled from a string (``<string>``, ``<ipython-input-...>``, any ``<...>`` file name but Python's
  ``<frozen ...>`` modules) counts as the learner's;
- in any other Python thread started while the watch is on, every call of a forbidden function counts (the check
  computes nothing in other threads); such a thread that outlives the watch drops it at its next call.

Python 3.11 has no ``sys.monitoring``: the watch is a profile function (``sys.setprofile`` and
``threading.setprofile``); it matches code objects, so ``from minddim.diffusion import q_sample`` made before the
check is caught as well as ``md.q_sample``.  What it cannot see: a thread that already existed before the check
(a pool made earlier), a subprocess, or code that recomputes the package's result by copying its source; the
watch stops the shortcut, not a learner set on cheating.
"""

from __future__ import annotations

import functools
import inspect
import os
import pkgutil
import sys
import sysconfig
import threading
from pathlib import Path

from .spec import CHECKS


def forbidden(name: str) -> list[tuple[str, object]]:
    """(what to call it in the message, function) for each package function question ``name`` forbids: the public
    minddim function of the same name (where one exists), ``Spec.forbidden`` and the answer key's reference."""
    import minddim

    spec = CHECKS[name]
    public = minddim._WHERE
    out = []
    if name in public:
        out.append((f"minddim.{name}", getattr(minddim, name)))
    for path in spec.forbidden:
        obj = pkgutil.resolve_name(f"minddim.{path}")
        short = path.split(".")[-1]
        if path.startswith("grading."):
            label = f"the answer key's {short}"
        else:
            label = f"minddim.{short}" if short in public else f"minddim.{path}"
        out.append((label, obj))
    out.append((f"the answer key's reference for {name}", spec.reference))
    return out


def _code_of(f):
    try:
        f = inspect.unwrap(f)
    except ValueError:
        pass
    f = getattr(f, "__func__", f)
    return getattr(f, "__code__", None)


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple:
    """The package's folder, the standard library's and the installed libraries', each ending in the separator."""
    import site

    dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - some virtualenvs' site module lack it
        pass
    dirs.add(str(Path(__file__).resolve().parents[1]))      # minddim/ itself
    return tuple(sorted(os.path.join(str(Path(d).resolve()), "") for d in dirs if d))


class CallWatch:
    """Context manager: records in ``caught`` (the first) a forbidden call that counts (see the module's docstring)
    while it is on.  Reusable; ``caught`` stays set once set."""

    def __init__(self, named_functions):
        self.codes = {}
        for label, f in named_functions:
            code = _code_of(f)
            if code is not None:
                self.codes.setdefault(code, label)
        self.caught = None
        self._files = {}
        self._on = False

    def is_forbidden(self, fn):
        """The label of ``fn`` if it is one of the forbidden functions itself (or a functools.partial of one)."""
        while isinstance(fn, functools.partial):
            fn = fn.func
        return self.codes.get(_code_of(fn))

    def _is_learners(self, filename: str) -> bool:
        known = self._files.get(filename)
        if known is None:
            if filename.startswith("<"):
                known = not filename.startswith("<frozen")
            else:
                known = not os.path.realpath(filename).startswith(_library_dirs())
            self._files[filename] = known
        return known

    def _profile(self, frame, event, arg):
        if event != "call" or self.caught is not None:
            return
        label = self.codes.get(frame.f_code)
        if label is None:
            return
        f = frame.f_back
        while f is not None and f is not self._stop:
            if self._is_learners(f.f_code.co_filename):
                self.caught = label
                return
            f = f.f_back

    def _profile_other_threads(self, frame, event, arg):
        if not self._on:            # a thread started during the check outlived it: it stops being watched
            sys.setprofile(None)
            return
        if event == "call" and self.caught is None and frame.f_code in self.codes:
            self.caught = self.codes[frame.f_code]

    def __enter__(self):
        self._stop = sys._getframe(1)          # the check's own frame: the walk back ends there
        self._previous = sys.getprofile()
        self._previous_threads = threading.getprofile()
        self._on = True
        if self.codes:
            sys.setprofile(self._profile)
            threading.setprofile(self._profile_other_threads)
        return self

    def __exit__(self, *exc):
        self._on = False
        sys.setprofile(self._previous)
        threading.setprofile(self._previous_threads)
        return False
