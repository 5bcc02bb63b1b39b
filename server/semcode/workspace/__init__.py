"""The workspace room: which files of a workspace root count, and their text.

Knows nothing of chunking, indexes or LSP. Three jobs, one module each:

- `ignore`: the ignore rules (version-control and junk directories, hidden files,
  `.gitignore`, `.semcodeignore`, `settings.exclude`), as `IgnoreRules`;
- `checks`: what a file's name or text says (binary, minified, generated), decoding,
  and the skip vocabulary (`SkipReason`, `FileSkipped`);
- `files`: `Workspace`, which walks a root with those rules (symlinks kept safe, nothing
  read) and reads a file's text through those checks.

What the rest of semcode uses is exported here (the indexer, the evaluation corpora,
the tests); the tables and helpers behind it stay in their modules.
"""

from semcode.workspace.checks import FileSkipped, SkipReason, valid_name
from semcode.workspace.files import FileEntry, IgnoreCause, Workspace
from semcode.workspace.ignore import IgnoreRule

__all__ = ["FileEntry", "FileSkipped", "IgnoreCause", "IgnoreRule", "SkipReason", "Workspace",
           "valid_name"]
