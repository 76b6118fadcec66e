#pragma once

// Whole-buffer writes to file descriptors: a pipe, socket or terminal may take fewer bytes than
// asked, and a signal may interrupt the call; every caller wants "all of it or an error".

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace base {

// Writes `data` to `fd`, retrying short writes and EINTR. Returns how many bytes were written:
// fewer than data.size() only when write() failed (errno says why) or wrote nothing.
size_t write_fully(int fd, std::span<const uint8_t> data);

// True when all of `data` was written.
bool write_all(int fd, std::span<const uint8_t> data);
bool write_all(int fd, std::string_view text);

// send(2) with MSG_NOSIGNAL (a peer that hung up is an error, not a SIGPIPE), retrying short sends
// and EINTR. True when all of `data` went out.
bool send_all(int fd, std::string_view data);

}  // namespace base
