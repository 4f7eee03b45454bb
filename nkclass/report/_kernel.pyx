# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# distutils: language = c++
"""The aggregation group-by kernel (private; used by nkclass.report).

One nogil pass assigns every flow a dense group id through an
open-addressing hash table keyed by the packed group key, and sums flows,
bytes and packets per group. The top lists use it; reports aggregate
in the native pass (nkclass._core.Aggregator).
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

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
