// Snapshot command-line helpers for main.cc: `--describe-snapshot FILE`,
// `--snapshot-version`, and merging a Diff memory file onto its base. Each returns the
// process exit status and prints to the given streams (one-line error on failure).
#pragma once

#include <ostream>
#include <string>

namespace hearth {

// Prints the snapshot format version this Hearth writes and reads ("1.0.0").
int PrintSnapshotVersion(std::ostream& out);
// Checks the state file (magic, version, checksum, contents) and prints a summary.
int DescribeSnapshot(const std::string& path, std::ostream& out, std::ostream& err);
// Applies Diff memory file `diff` onto Full memory file `base` in place.
int MergeDiffSnapshot(const std::string& diff, const std::string& base, std::ostream& err);

}  // namespace hearth
