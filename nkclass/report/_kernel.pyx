# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The aggregation group-by kernel (private; used by nkclass.report).

One nogil pass assigns every flow a dense group id through an
open-addressing hash table keyed by the packed group key, and sums flows,
bytes and packets per group. A second pass lays the watched hosts and the
outside peers of each group out contiguously (a counting sort by group), so
the caller hands each group's addresses to pyroaring in one call.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libcpp.algorithm cimport sort

import numpy as np

cdef extern from "nkclass/types.hpp" namespace "nkclass":
    cdef struct ipv6_net_t:
        uint8_t bytes[16]
    bint ipv4_mapped(const ipv6_net_t& a, uint32_t* v4) noexcept nogil

cdef inline uint64_t mix(uint64_t k) noexcept nogil:
    # splitmix64 finaliser: spreads packed keys over the table
    k ^= k >> 30
    k *= 0xbf58476d1ce4e5b9ULL
    k ^= k >> 27
    k *= 0x94d049bb133111ebULL
    k ^= k >> 31
    return k


cdef struct Table:
    int64_t* keys
    int32_t* ids
    size_t mask
    size_t count


cdef int table_init(Table* t, size_t size) noexcept nogil:
    cdef size_t i
    t.keys = <int64_t*>malloc(size * sizeof(int64_t))
    t.ids = <int32_t*>malloc(size * sizeof(int32_t))
    if t.keys == NULL or t.ids == NULL:
        return -1
    for i in range(size):
        t.ids[i] = -1
    t.mask = size - 1
    t.count = 0
    return 0


cdef void table_free(Table* t) noexcept nogil:
    free(t.keys)
    free(t.ids)


cdef int table_grow(Table* t) noexcept nogil:
    cdef Table bigger
    cdef size_t i, j
    if table_init(&bigger, (t.mask + 1) * 2) != 0:
        return -1
    for i in range(t.mask + 1):
        if t.ids[i] >= 0:
            j = mix(<uint64_t>t.keys[i]) & bigger.mask
            while bigger.ids[j] >= 0:
                j = (j + 1) & bigger.mask
            bigger.keys[j] = t.keys[i]
            bigger.ids[j] = t.ids[i]
    bigger.count = t.count
    table_free(t)
    t[0] = bigger
    return 0


cdef inline int32_t table_id(Table* t, int64_t key, int64_t* group_keys) noexcept nogil:
    """Group id of key, inserting it (id = count) when new; -1 on OOM."""
    cdef size_t j = mix(<uint64_t>key) & t.mask
    while t.ids[j] >= 0:
        if t.keys[j] == key:
            return t.ids[j]
        j = (j + 1) & t.mask
    t.keys[j] = key
    t.ids[j] = <int32_t>t.count
    group_keys[t.count] = key
    t.count += 1
    return t.ids[j]


def group_ids(const int64_t[::1] keys, int64_t[::1] group_of, int64_t[::1] group_keys):
    """Dense group ids (in first-seen order) for packed int64 keys.

    group_of[i] receives the id of keys[i]; group_keys[g] the key of group g
    (it needs room for len(keys) entries). Returns the number of groups.
    """
    cdef Py_ssize_t n = keys.shape[0], i
    cdef Table t
    cdef int32_t g
    cdef int failed = 0
    if n == 0:
        return 0
    with nogil:
        if table_init(&t, 1024) != 0:
            failed = 1
        else:
            for i in range(n):
                if t.count * 2 >= t.mask:
                    if table_grow(&t) != 0:
                        failed = 1
                        break
                g = table_id(&t, keys[i], &group_keys[0])
                group_of[i] = g
            table_free(&t)
    if failed:
        raise MemoryError("aggregation hash table")
    return t.count


def sum_by_group(const int64_t[::1] group_of, Py_ssize_t n_groups, const uint64_t[::1] nbytes,
                 const uint64_t[::1] packets, uint64_t[::1] flows_out, uint64_t[::1] bytes_out,
                 uint64_t[::1] packets_out):
    """Per-group flow counts and byte and packet sums (outputs zeroed here)."""
    cdef Py_ssize_t n = group_of.shape[0], i
    cdef int64_t g
    with nogil:
        for i in range(n_groups):
            flows_out[i] = 0
            bytes_out[i] = 0
            packets_out[i] = 0
        for i in range(n):
            g = group_of[i]
            flows_out[g] += 1
            bytes_out[g] += nbytes[i]
            packets_out[g] += packets[i]


def ipv4_of_rows(const uint8_t[:, ::1] rows, uint32_t[::1] v4_out, uint8_t[::1] is_v4_out):
    """IPv4 (host order) of 16-byte rows that are IPv4-mapped; is_v4_out
    marks them (other rows are IPv6 proper)."""
    cdef Py_ssize_t n = rows.shape[0], i
    cdef uint32_t v
    with nogil:
        for i in range(n):
            if ipv4_mapped((<const ipv6_net_t*>&rows[i, 0])[0], &v):
                v4_out[i] = v
                is_v4_out[i] = 1
            else:
                v4_out[i] = 0
                is_v4_out[i] = 0


def distinct_by_group(const int64_t[::1] group_of, Py_ssize_t n_groups,
                      const uint8_t[::1] use, const uint32_t[::1] values,
                      int64_t[::1] offsets_out, uint32_t[::1] values_out):
    """The distinct values of each group, sorted (roaring's fast path):
    group g's are values_out[offsets_out[g]:offsets_out[g + 1]].

    Flows repeat (group, value) pairs many times over, so pairs are first
    deduplicated in a hash set; only the distinct pairs are laid out by
    group (a counting sort) and sorted. values_out needs room for every
    used value. Returns the number of distinct pairs.
    """
    cdef Py_ssize_t n = group_of.shape[0], i
    cdef size_t size = 1 << 14, j, mask, k
    cdef uint64_t key, EMPTY = 0xffffffffffffffffULL
    cdef uint64_t* slots
    cdef uint64_t* bigger
    cdef uint64_t* pairs
    cdef int64_t g, n_pairs = 0
    cdef int64_t* cursor
    cdef int failed = 0
    # The set starts small and doubles at half load: distinct pairs are
    # usually far fewer than flows, and a set that fits in cache is fast.
    slots = <uint64_t*>malloc(size * sizeof(uint64_t))
    pairs = <uint64_t*>malloc((n + 1) * sizeof(uint64_t))
    cursor = <int64_t*>malloc((n_groups + 1) * sizeof(int64_t))
    if slots == NULL or pairs == NULL or cursor == NULL:
        free(slots)
        free(pairs)
        free(cursor)
        raise MemoryError("aggregation distinct sets")
    mask = size - 1
    with nogil:
        for j in range(size):
            slots[j] = EMPTY
        for i in range(n):
            if not use[i]:
                continue
            key = (<uint64_t>group_of[i] << 32) | values[i]
            j = mix(key) & mask
            while slots[j] != EMPTY and slots[j] != key:
                j = (j + 1) & mask
            if slots[j] != EMPTY:
                continue
            slots[j] = key
            pairs[n_pairs] = key
            n_pairs += 1
            if <size_t>n_pairs * 2 > size:
                bigger = <uint64_t*>malloc(2 * size * sizeof(uint64_t))
                if bigger == NULL:
                    failed = 1
                    break
                size *= 2
                mask = size - 1
                for j in range(size):
                    bigger[j] = EMPTY
                for k in range(<size_t>n_pairs):
                    j = mix(pairs[k]) & mask
                    while bigger[j] != EMPTY:
                        j = (j + 1) & mask
                    bigger[j] = pairs[k]
                free(slots)
                slots = bigger
        for i in range(n_groups + 1):
            offsets_out[i] = 0
        for i in range(n_pairs):
            offsets_out[(pairs[i] >> 32) + 1] += 1
        for i in range(n_groups):
            offsets_out[i + 1] += offsets_out[i]
        for i in range(n_groups + 1):
            cursor[i] = offsets_out[i]
        for i in range(n_pairs):
            g = <int64_t>(pairs[i] >> 32)
            values_out[cursor[g]] = <uint32_t>(pairs[i] & 0xffffffffULL)
            cursor[g] += 1
        for g in range(n_groups):
            sort(&values_out[0] + offsets_out[g], &values_out[0] + offsets_out[g + 1])
    free(slots)
    free(pairs)
    free(cursor)
    if failed:
        raise MemoryError("aggregation distinct sets")
    return n_pairs
