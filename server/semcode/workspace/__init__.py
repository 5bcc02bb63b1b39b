"""The workspace room: which files of a workspace root count, and their text.

Knows nothing of chunking, indexes or LSP. Three jobs, one module each:

- `ignore`: the ignore rules (version-control and junk directories, hidden files,
  `.gitignore`, `.semcodeignore`, `settings.exclude`), as `IgnoreRules`;
- `checks`: what a file's name or text says (binary, minified, generated), decoding,
  and the skip vocabulary (`SkipReason`, `FileSkipped`);
- `files`: `Workspace`, which walks a root with those rules (symlinks kept safe, nothing
  read) and reads a file's text through those checks.

The indexer, the evaluation corpora and the tests use the names exported here.
"""

from semcode.workspace.checks import (
    FileSkipped,
    SkipReason,
    content_reason,
    decode,
    name_reason,
    valid_name,
)
from semcode.workspace.files import FileEntry, Workspace
from semcode.workspace.ignore import HIDDEN_ALLOWED, JUNK_DIRS, VCS_DIRS

__all__ = ["SkipReason", "FileEntry", "FileSkipped", "Workspace", "name_reason",
           "content_reason", "decode", "valid_name", "VCS_DIRS", "JUNK_DIRS", "HIDDEN_ALLOWED"]
