#include "engine/base/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

absl::Status ErrnoError(const std::filesystem::path& path, absl::string_view what) {
  return absl::ErrnoToStatus(errno, absl::StrCat(path.string(), ": ", what));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const MappedFile>> MappedFile::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, "cannot open");
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    absl::Status status = ErrnoError(path, "cannot stat");
    ::close(fd);
    return status;
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a regular file"));
  }
  const auto size = static_cast<size_t>(info.st_size);
  void* address = nullptr;
  if (size > 0) {
    address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) {
      absl::Status status = ErrnoError(path, "cannot memory-map");
      ::close(fd);
      return status;
    }
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return std::shared_ptr<const MappedFile>(new MappedFile(path, address, size));
}

MappedFile::~MappedFile() {
  if (address_ != nullptr) ::munmap(address_, size_);
}

absl::StatusOr<FileWriter> FileWriter::Create(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(path, "cannot create");
  return FileWriter(path, fd);
}

FileWriter::FileWriter(FileWriter&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

FileWriter& FileWriter::operator=(FileWriter&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileWriter::~FileWriter() { Abandon(); }

void FileWriter::Abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(path_.c_str());
}

absl::Status FileWriter::Write(const void* data, size_t bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_.string(), ": write after close"));
  const auto* next = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd_, next, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(path_, "write failed");
    }
    if (written == 0) return absl::DataLossError(absl::StrCat(path_.string(), ": write made no progress"));
    next += written;
    bytes -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

absl::Status FileWriter::Close(bool sync) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_.string(), ": already closed"));
  if (sync && ::fsync(fd_) != 0) return ErrnoError(path_, "fsync failed");
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    absl::Status status = ErrnoError(path_, "close failed");
    ::unlink(path_.c_str());
    return status;
  }
  return absl::OkStatus();
}

absl::Status WriteFileContents(const std::filesystem::path& path, absl::string_view contents, bool sync) {
  NIBBLE_ASSIGN_OR_RETURN(FileWriter writer, FileWriter::Create(path));
  NIBBLE_RETURN_IF_ERROR(writer.Write(contents));
  return writer.Close(sync);
}

absl::Status SyncPath(const std::filesystem::path& path, bool directory) {
  const int fd = open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat(path.string(), ": cannot open to sync: ", std::strerror(errno)));
  const int rc = fsync(fd);
  const int saved_errno = errno;
  close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat(path.string(), ": fsync failed: ", std::strerror(saved_errno)));
  return absl::OkStatus();
}

absl::Status ReplaceFileDurably(const std::filesystem::path& path, absl::string_view contents) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(temporary, contents, /*sync=*/true));
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved_errno = errno;
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    return absl::InternalError(
        absl::StrCat("cannot rename ", temporary.string(), " to ", path.string(), ": ", std::strerror(saved_errno)));
  }
  return SyncPath(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path(), /*directory=*/true);
}

absl::Status CopyFileContents(const std::filesystem::path& from, const std::filesystem::path& to, bool sync) {
  NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> source, MappedFile::Open(from));
  NIBBLE_ASSIGN_OR_RETURN(FileWriter writer, FileWriter::Create(to));
  NIBBLE_RETURN_IF_ERROR(writer.Write(source->data(), source->size()));
  return writer.Close(sync);
}

absl::StatusOr<std::string> ReadTextFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace nibble
