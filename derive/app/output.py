"""Where derive writes, and how: never over what it did not write, always all at once.

A build (a lesson, a report, a course's lesson) is written into a staging folder beside its
target and swapped in whole, so an interrupted or failed build leaves the previous one as it
was. The target must be new, empty, or a folder derive wrote before: each such folder holds a
`.derive` file listing what derive put there, and files the user added to it are carried over
to the new build. Any other folder is refused, unless the user forces it: then derive's files
are added beside the user's, one atomic rename each, and nothing of theirs is removed. The
current folder, its parents, the home folder and repository roots are always refused.

Builds into one folder wait for each other (a lock on its parent folder); staging left behind
by a killed build is removed by the next one. New folders get the umask's permissions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from derive.core.errors import DeriveError

MARKER = ".derive"  # the files derive wrote into a folder, one relative path a line
OURS = (MARKER, ".derive-build")  # derive's own bookkeeping files


def write_folder(out: Path, write: Callable[[Path], None], force: bool = False) -> None:
    """write(staging) fills a new folder, which then replaces `out` whole (or, when `force`
    lets derive write into a folder of the user's, is added to it file by file)."""
    out = Path(out)
    kind = _target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out.parent):
        _clear_leftovers(out)
        try:
            staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(out), dir=out.parent))
            write(staging)
            wrote = sorted(
                p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()
            )
            _open_modes(staging)
            if kind == "foreign":
                _add_files(staging, out, wrote)
            else:
                (staging / MARKER).write_text("\n".join(wrote) + "\n", encoding="utf-8")
                if kind == "derive":
                    _carry_over(out, staging)
                _swap(staging, out)
        except BaseException:
            # The lock is ours and older leftovers are cleared: every staging folder of this
            # target is this build's, even one whose mkdtemp a signal interrupted.
            for folder in out.parent.iterdir():
                if folder.name.startswith(_staging_prefix(out)):
                    shutil.rmtree(folder, ignore_errors=True)
            raise


def write_file(path: Path, text: str) -> None:
    """One file, whole or not at all: written beside its place, then renamed over it (a
    symlink there is replaced, never followed)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def refuse_early(out: Path, force: bool = False) -> None:
    """write_folder's refusal, raised before a long computation rather than after it (a class
    is graded in minutes); write_folder checks again when it writes."""
    _target(Path(out), force)


def claim_folder(out: Path, force: bool = False) -> None:
    """A folder derive will write several builds into (a course): checked as a build's target
    is, then created; its own files are listed in its `.derive` by `record`."""
    _target(Path(out), force)
    Path(out).mkdir(parents=True, exist_ok=True)


def record(out: Path, names: list[str]) -> None:
    """Add names to the list of what derive wrote into `out`."""
    listed = set(names)
    if (out / MARKER).is_file():
        listed |= set((out / MARKER).read_text(encoding="utf-8").split())
    write_file(out / MARKER, "\n".join(sorted(listed)) + "\n")


# -- refusals ---------------------------------------------------------------------------------


def _target(out: Path, force: bool) -> str:
    """ "new", "derive" (a folder derive wrote) or "foreign" (forced); else a refusal."""
    resolved = out.resolve()
    here = Path.cwd().resolve()
    home = Path.home().resolve()
    if resolved == here or resolved in here.parents:
        raise DeriveError(f"--out {out}: refusing to write into the current folder or above it")
    if resolved == home or resolved == Path(resolved.anchor):
        raise DeriveError(f"--out {out}: refusing to write into the home or root folder")
    if (resolved / ".git").exists():
        raise DeriveError(f"--out {out}: refusing to write into a repository's root folder")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DeriveError(f"--out {out}: this is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return "new"
    if any((out / name).is_file() for name in OURS):
        return "derive"
    if force:
        return "foreign"
    raise DeriveError(
        f"--out {out}: the folder holds files derive did not write; choose a new folder, "
        "or add --force to put derive's files beside them (nothing of yours is removed)"
    )


# -- the swap ----------------------------------------------------------------------------------


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.derive-staging-"


def _clear_leftovers(out: Path) -> None:
    """Staging and retired folders of this target left by a build that was killed (the lock
    is held: no build of it is running)."""
    for prefix in (_staging_prefix(out), f".{out.name}.derive-retired-"):
        for leftover in out.parent.glob(prefix + "*"):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


def _carry_over(out: Path, staging: Path) -> None:
    """Files in the old build that derive did not write (a teacher's notes) move to the new."""
    listed = (out / MARKER).read_text(encoding="utf-8").split() if (out / MARKER).is_file() else []
    ours = set(listed) | set(OURS)
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if path.is_file() and relative not in ours and not (staging / relative).exists():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            path.rename(staging / relative)


def _swap(staging: Path, out: Path) -> None:
    """The new folder in place of the old; the old stays whole until the new one is."""
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.derive-retired-", dir=out.parent))
        out.rename(retired / out.name)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)


def _add_files(staging: Path, out: Path, wrote: list[str]) -> None:
    """Forced into a user's folder: each of derive's files renamed into place, the user's own
    files untouched; the list of derive's files kept for the next build."""
    for relative in wrote:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, out / relative)
    record(out, wrote)
    shutil.rmtree(staging, ignore_errors=True)


def _open_modes(folder: Path) -> None:
    """Folders made by mkdtemp are private (0700): give them the umask's permissions."""
    mode = 0o777 & ~_umask()
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        os.chmod(path, mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Builds into the same parent folder wait for each other (flock on the folder itself:
    nothing is written for it). Without flock (Windows), builds are not serialised."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
