# cython: language_level=3, boundscheck=False, wraparound=False
# distutils: language = c++
"""Typed loops over text buffers (private): address text <-> binary
columns, and the structural scan of JSON text made before a JSON parser sees it.

Loops over Arrow-style buffers (one data buffer plus an offsets array) call
the core library's strict parsers and formatters with the GIL released.
Validation of nulls and dtypes happens in nkclass.flows.
"""
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.string cimport memchr

cdef extern from "nkclass/ip_text.hpp" namespace "nkclass":
    ctypedef uint32_t ipv4_host_t
    cdef struct ipv6_net_t:
        uint8_t bytes[16]
    cpdef enum class IpFamily(uint8_t):
        kInvalid
        kV4
        kV6
    IpFamily parse_ip(const char* s, size_t n, ipv4_host_t* v4, ipv6_net_t* v6) noexcept nogil
    IpFamily parse_prefix(const char* s, size_t n, ipv4_host_t* v4, ipv6_net_t* v6,
                          uint8_t* length) noexcept nogil
    size_t format_ipv4(ipv4_host_t a, char* out) noexcept nogil
    size_t format_ipv6(const ipv6_net_t& a, char* out) noexcept nogil

cdef extern from "nkclass/types.hpp" namespace "nkclass":
    bint ipv4_mapped(const ipv6_net_t& a, ipv4_host_t* v4) noexcept nogil


def narrow_ipv4(const uint8_t[:, ::1] rows, uint32_t[::1] out):
    """True when every 16-byte row is IPv4-mapped (::ffff:a.b.c.d); out then
    holds the IPv4 addresses (host order). Stops at the first other row."""
    cdef Py_ssize_t n = rows.shape[0], i
    cdef ipv4_host_t v
    cdef bint all_v4 = True
    with nogil:
        for i in range(n):
            if not ipv4_mapped((<const ipv6_net_t*>&rows[i, 0])[0], &v):
                all_v4 = False
                break
            out[i] = v
    return all_v4


def take_clipped(const uint32_t[::1] table, const uint32_t[::1] index, uint32_t[::1] out):
    """out[i] = table[min(index[i], len(table) - 1)]: numpy's take with
    mode="clip" without widening the indices to 64 bits first."""
    cdef Py_ssize_t n = index.shape[0], i
    cdef uint32_t last
    if table.shape[0] == 0 or out.shape[0] != n:
        raise ValueError("take_clipped: an empty table or an output of another length")
    last = <uint32_t>(table.shape[0] - 1)
    with nogil:
        for i in range(n):
            out[i] = table[index[i] if index[i] < last else last]


def parse_addresses(const uint8_t[::1] data, const int64_t[::1] offsets,
                    uint32_t[::1] v4_out, uint8_t[:, ::1] v6_out, uint8_t[::1] family_out):
    """Parse n = len(offsets) - 1 address texts.

    family_out[i] becomes 4 or 6 and the matching output row is filled.
    Returns -1 when every text parsed, else the index of the first that did
    not (outputs past it are unspecified).
    """
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i
    cdef IpFamily fam
    cdef Py_ssize_t bad = -1
    cdef const char* base = <const char*>&data[0] if data.shape[0] else <const char*>0
    with nogil:
        for i in range(n):
            fam = parse_ip(base + offsets[i], <size_t>(offsets[i + 1] - offsets[i]),
                           &v4_out[i], <ipv6_net_t*>&v6_out[i, 0])
            if fam == IpFamily.kInvalid:
                bad = i
                break
            family_out[i] = <uint8_t>fam
    return bad


def parse_prefixes(const uint8_t[::1] data, const int64_t[::1] offsets,
                   uint32_t[::1] v4_out, uint8_t[:, ::1] v6_out, uint8_t[::1] length_out,
                   uint8_t[::1] family_out):
    """Parse n prefix texts ("addr/len" or a bare address); see parse_addresses."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i
    cdef IpFamily fam
    cdef Py_ssize_t bad = -1
    cdef const char* base = <const char*>&data[0] if data.shape[0] else <const char*>0
    with nogil:
        for i in range(n):
            fam = parse_prefix(base + offsets[i], <size_t>(offsets[i + 1] - offsets[i]),
                               &v4_out[i], <ipv6_net_t*>&v6_out[i, 0], &length_out[i])
            if fam == IpFamily.kInvalid:
                bad = i
                break
            family_out[i] = <uint8_t>fam
    return bad


def format_ipv4_column(const uint32_t[::1] addrs, uint8_t[::1] data_out, int64_t[::1] offsets_out):
    """Write dotted quads; data_out needs 15 bytes per address. Returns bytes used."""
    cdef Py_ssize_t n = addrs.shape[0]
    cdef Py_ssize_t i
    cdef int64_t pos = 0
    cdef char* base = <char*>&data_out[0] if data_out.shape[0] else <char*>0
    with nogil:
        offsets_out[0] = 0
        for i in range(n):
            pos += <int64_t>format_ipv4(addrs[i], base + pos)
            offsets_out[i + 1] = pos
    return pos


def format_ipv6_column(const uint8_t[:, ::1] addrs, uint8_t[::1] data_out, int64_t[::1] offsets_out):
    """Write RFC 5952 text; data_out needs 46 bytes per address. Returns bytes used."""
    cdef Py_ssize_t n = addrs.shape[0]
    cdef Py_ssize_t i
    cdef int64_t pos = 0
    cdef char* base = <char*>&data_out[0] if data_out.shape[0] else <char*>0
    with nogil:
        offsets_out[0] = 0
        for i in range(n):
            pos += <int64_t>format_ipv6((<const ipv6_net_t*>&addrs[i, 0])[0], base + pos)
            offsets_out[i + 1] = pos
    return pos


def unsafe_json_lines(const uint8_t[::1] data, int max_depth):
    """Lines of ``data`` to keep away from a JSON parser, as (start offset,
    reason) pairs: reason 1 when a line nests deeper than ``max_depth``,
    2 when it does not close every bracket and string it opens (so it is
    not one JSON value; a parser would carry its nesting into the next
    lines), 3 when something follows its first closed object or array (a
    parser would read ``{...}{...}``, two records run together, as two
    rows of one line). Strings are skipped, escapes honoured.

    With those lines blanked, every line returns to depth 0, so no text made
    of whole lines makes a parser recurse deeper than max_depth.
    """
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t line_start = 0
    cdef int depth = 0
    cdef int reason = 0
    cdef bint in_string = False
    cdef bint escaped = False
    cdef bint closed = False  # the line's first object or array has closed
    cdef uint8_t c
    found = []
    while i <= n:
        with nogil:
            while i <= n:
                c = data[i] if i < n else 10
                if c == 10:  # newline (or the end): judge the line
                    if reason == 0 and (depth != 0 or in_string):
                        reason = 2
                    i += 1
                    closed = False
                    if reason:
                        break
                    line_start = i
                    continue
                if reason:
                    pass
                elif closed:
                    if c != 32 and c != 9 and c != 13:  # not space, tab or CR
                        reason = 3
                elif in_string:
                    if escaped:
                        escaped = False
                    elif c == 92:  # backslash
                        escaped = True
                    elif c == 34:  # quote
                        in_string = False
                elif c == 34:
                    in_string = True
                elif c == 123 or c == 91:  # { [
                    depth += 1
                    if depth > max_depth:
                        reason = 1
                elif c == 125 or c == 93:  # } ]
                    depth -= 1
                    if depth < 0:
                        reason = 2
                    elif depth == 0:
                        closed = True
                i += 1
        if reason:
            found.append((line_start, reason))
            reason = 0
            depth = 0
            in_string = False
            escaped = False
            closed = False
            line_start = i
    return found


def long_lines(const uint8_t[::1] data, Py_ssize_t max_bytes):
    """Start offsets of the lines of ``data`` longer than ``max_bytes``
    (not counting the newline)."""
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t end
    cdef const uint8_t* base = &data[0] if n else <const uint8_t*>0
    cdef const void* hit
    found = []
    while start < n:
        with nogil:
            while start < n:
                hit = memchr(base + start, 10, <size_t>(n - start))
                end = n if hit == NULL else <Py_ssize_t>(<const uint8_t*>hit - base)
                if end - start > max_bytes:
                    break
                start = end + 1
        if start < n:
            found.append(start)
            start = end + 1
    return found
