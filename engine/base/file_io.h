// Host files: whole-file read-only memory maps, and writes that check every step.
//
// MappedFile maps a file read-only and is handed out as a std::shared_ptr, so views into it (HostTensor
// owners) keep the mapping alive for as long as they live. The mapping shows the file as it is on disk: a
// file truncated by another process while mapped faults on access (SIGBUS), as with any mmap reader.
// A MappedFile is immutable and may be read from any thread.
//
// FileWriter creates (or replaces) a file and checks every write, the optional fsync and the close, so a full
// disk surfaces as a status naming the file, never as a silently short file. A FileWriter destroyed before a
// successful Close removes its partial file. One thread at a time.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nibble {

class MappedFile {
 public:
  // NotFound when the file cannot be opened; InvalidArgument when it is not a regular file.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::byte* data() const { return static_cast<const std::byte*>(address_); }
  size_t size() const { return size_; }

 private:
  MappedFile(std::filesystem::path path, void* address, size_t size)
      : path_(std::move(path)), address_(address), size_(size) {}

  std::filesystem::path path_;
  void* address_;  // nullptr for an empty file
  size_t size_;
};

class FileWriter {
 public:
  static absl::StatusOr<FileWriter> Create(const std::filesystem::path& path);
  FileWriter(FileWriter&& other) noexcept;
  FileWriter& operator=(FileWriter&& other) noexcept;
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  ~FileWriter();

  const std::filesystem::path& path() const { return path_; }
  absl::Status Write(const void* data, size_t bytes);
  absl::Status Write(absl::string_view text) { return Write(text.data(), text.size()); }
  // Flushes the file to disk first when `sync` is set. The file is complete only once this returns OK.
  absl::Status Close(bool sync);

 private:
  FileWriter(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Abandon();  // closes and removes a file that was not closed successfully

  std::filesystem::path path_;
  int fd_ = -1;
};

// Reads a file whole (NotFound naming it when it cannot be opened).
absl::StatusOr<std::string> ReadTextFile(const std::filesystem::path& path);
// Writes `contents` as the whole of `path` through a FileWriter.
absl::Status WriteFileContents(const std::filesystem::path& path, absl::string_view contents, bool sync = false);
// Flushes a file or directory to disk (Internal naming it on failure).
absl::Status SyncPath(const std::filesystem::path& path, bool directory);
// Replaces `path` with `contents` so that a crash leaves either the old file or the new one, whole: writes
// <path>.tmp, fsyncs it, renames it over `path` and fsyncs the directory.
absl::Status ReplaceFileDurably(const std::filesystem::path& path, absl::string_view contents);
// Copies the whole of `from` to `to` (mapped, then written through a FileWriter).
absl::Status CopyFileContents(const std::filesystem::path& from, const std::filesystem::path& to, bool sync = false);

}  // namespace nibble
