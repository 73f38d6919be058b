"""Path checks shared by the readers and writers.

Users pass paths on the command line, so the commonest failures (a typo, a folder, an empty
download, an output folder that does not exist) are caught here, before any decoder or encoder
sees the path, and turned into one plain sentence instead of a library traceback.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import av
import av.error

from facetalk.errors import FacetalkError

# Errors PyAV and the OS raise for data that is not what it claims to be.
AV_ERRORS = (av.error.FFmpegError, OSError, EOFError)


def one_line(text: object, limit: int = 160) -> str:
    """Squash a library's message onto one short line so it can sit inside ours."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def check_input_file(path: str | os.PathLike[str], what: str, hint: str) -> Path:
    """Return ``path`` as a Path if it names a non-empty regular file, else raise.

    ``what`` names the kind of input ("image", "audio", "video") and ``hint`` is the
    "what to do" half of the message, e.g. "pass a JPEG, PNG or WebP photo".
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FacetalkError(f"{what} file '{p}' does not exist; check the path and {hint}") from None
    except OSError as exc:
        raise FacetalkError(
            f"cannot open {what} file '{p}': {one_line(exc.strerror or exc)}; {hint}"
        ) from None
    if p.is_dir():
        raise FacetalkError(f"'{p}' is a folder, not a {what} file; {hint}")
    if st.st_size == 0:
        raise FacetalkError(f"{what} file '{p}' is empty (0 bytes); {hint}")
    if not os.access(p, os.R_OK):
        raise FacetalkError(f"cannot read {what} file '{p}': permission denied; {hint}")
    return p


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Fail before any work is done if ``path`` cannot be written; return the file to replace.

    Rendering can take minutes; finding out afterwards that the folder was misspelt wastes them.

    Outputs are written to a temporary file beside the target and renamed over it, so only a
    regular file (or nothing) may stand at the target: a device, FIFO or socket there is refused
    (renaming over ``/dev/null`` would replace the device node itself). A symbolic link is
    followed, as a shell's ``>`` does: its final target must be a regular file, which is replaced
    in its own folder (the link keeps pointing at it); a link to nothing or to a non-regular file
    is refused. The returned path is that target (``path`` itself when it is not a link).
    """
    p = Path(path)
    hint = "choose another output path"
    try:
        is_link = stat.S_ISLNK(os.lstat(p).st_mode)
    except OSError:
        is_link = False
    target = p
    if is_link:
        target = Path(os.path.realpath(p))
        if not os.path.lexists(target) or os.path.islink(target):  # dangling, or a loop
            raise FacetalkError(f"cannot write '{p}': it is a symbolic link to '{target}', which does not "
                                f"exist (links are followed only to an existing file); {hint}")
    _check_kind(p, target, hint)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise FacetalkError(f"cannot write '{p}': directory '{parent}' does not exist; {hint}")
    if not parent.is_dir():
        raise FacetalkError(f"cannot write '{p}': '{parent}' is not a directory; {hint}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FacetalkError(f"cannot write '{p}': directory '{parent}' is not writable; {hint}")
    return target


def _check_kind(p: Path, target: Path, hint: str) -> None:
    """Refuse a target that exists and is not a regular file (``p`` is what the user typed)."""
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there; the folder checks follow
        return
    except OSError as exc:
        raise FacetalkError(f"cannot write '{p}': {one_line(exc.strerror or exc)}; {hint}") from None
    if stat.S_ISREG(mode):
        return
    via = f" (a symbolic link to '{target}')" if target != p else ""
    if stat.S_ISDIR(mode):
        raise FacetalkError(f"cannot write '{p}'{via}: it is an existing folder; {hint}")
    raise FacetalkError(f"cannot write '{p}'{via}: it is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, "
                        f"and only a regular file is replaced; {hint}")


_KINDS = {stat.S_IFCHR: "a device (character special file)",
          stat.S_IFBLK: "a device (block special file)", stat.S_IFIFO: "a named pipe (FIFO)",
          stat.S_IFSOCK: "a socket"}


def replace_output(tmp: Path, final: Path) -> None:
    """Move the finished temporary file onto ``final`` (as returned by check_output_path).

    The target's kind is checked again first: something other than a regular file may have
    appeared there while the output was being made. A failure leaves ``tmp`` for the caller to
    remove.
    """
    _check_kind(final, final, "choose another output path")
    os.replace(tmp, final)


def create_partial_file(final: Path, suffix: str) -> Path:
    """Create an empty, uniquely named hidden file beside ``final`` and return its path.

    Writing beside the target keeps the final ``os.replace`` atomic (same file system), and the
    hidden ``.NAME.partial-XXXX`` name makes a crashed run's leftovers obvious. Unlike
    ``tempfile.mkstemp`` the file gets the usual umask-based mode, so the renamed output is not
    left readable by its owner only.
    """
    parent = final.parent if str(final.parent) else Path(".")
    for _ in range(100):
        candidate = parent / f".{final.name}.partial-{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise FacetalkError(
                f"cannot write '{final}': {one_line(exc.strerror or exc)}; choose another output path"
            ) from None
        os.close(fd)
        return candidate
    raise FacetalkError(
        f"cannot write '{final}': could not create a temporary file beside it; choose another output path"
    )


def remove_quietly(path: Path | None) -> None:
    """Delete a leftover temporary file; a failure here must not hide the original error."""
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


def open_media(p: Path, kind: str, hint: str, no_track: str) -> av.container.InputContainer:
    """Open a media file that must hold a `kind` ("audio" or "video") stream; the caller closes it."""
    try:
        container = av.open(str(p), metadata_errors="replace")
    except AV_ERRORS as exc:
        raise FacetalkError(
            f"cannot read {kind} '{p}': not a media file, or its header is damaged ({one_line(exc)}); {hint}"
        ) from None
    if not getattr(container.streams, kind):
        container.close()
        raise FacetalkError(f"'{p}' has no {kind} track; {no_track}")
    return container
