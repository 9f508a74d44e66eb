"""Where the library goes besides its folder: one protocol for every sink (Notion, Eagle, the
DJ exports), and one registry the Dagster layer builds its assets from.

A sink is either per track (a Notion page, an Eagle item: written when that track changes)
or per library (a rekordbox XML, a Traktor NML: the whole library in one file, rewritten
when anything in it changed). Adding one (Engine DJ, VirtualDJ) is a module with a class
that follows :class:`TrackSink` or :class:`LibrarySink` and one :func:`register` call.
"""

from .base import (
    REGISTRY,
    FilePath,
    LibrarySink,
    Link,
    Markdown,
    Registration,
    Report,
    Sink,
    TrackSink,
    register,
    registered,
)

__all__ = ["REGISTRY", "FilePath", "LibrarySink", "Link", "Markdown", "Registration", "Report", "Sink", "TrackSink",
           "register", "registered"]
