// The C interface: nk_classify_arrow, a record batch across the Arrow C
// Data Interface. Columns of the exact types are read in place; others are
// converted (range-checked) into memory this call owns; the batch is
// borrowed and never released here.
#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "capi.hpp"

using nkclass::capi::fail;

namespace {

constexpr const char* kFunction = "nk_classify_arrow";

// One child of the batch: batch row i is the child's physical row
// `base + i` (the child's own offset plus the struct's).
struct Column {
    const char* name = nullptr;
    const ArrowSchema* schema = nullptr;
    const ArrowArray* array = nullptr;
    std::int64_t base = 0;
};

std::string quoted(const char* name) { return std::string("column '") + name + "'"; }

nk_status bad(nk_status code, const Column& c, const std::string& what) {
    return fail(code, std::string(kFunction) + ": " + quoted(c.name) + ": " + what);
}

bool starts_with(const char* s, const char* prefix) {
    return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

// The batch's columns and the memory holding converted ones.
class Batch {
public:
    nk_status open(const ArrowSchema* schema, const ArrowArray* array) {
        if (schema == nullptr || array == nullptr)
            return fail(NK_E_ARGUMENT, std::string(kFunction) + ": schema and array must not be NULL");
        if (schema->format == nullptr || std::strcmp(schema->format, "+s") != 0)
            return fail(NK_E_UNSUPPORTED,
                        std::string(kFunction) + ": expected a struct array (format \"+s\", a record "
                                                 "batch), got format \"" +
                            (schema->format ? schema->format : "(null)") + "\"");
        if (array->length < 0 || array->offset < 0 || array->n_children != schema->n_children ||
            schema->n_children < 0 || array->n_buffers != 1 ||
            (schema->n_children > 0 && (schema->children == nullptr || array->children == nullptr)))
            return fail(NK_E_ARGUMENT, std::string(kFunction) +
                                           ": the struct array does not match its schema (length, "
                                           "offset, children or buffers)");
        n_ = static_cast<std::size_t>(array->length);
        for (std::int64_t k = 0; k < schema->n_children; ++k) {
            Column c;
            c.schema = schema->children[k];
            c.array = array->children[k];
            if (c.schema == nullptr || c.array == nullptr || c.schema->name == nullptr ||
                c.schema->format == nullptr)
                return fail(NK_E_ARGUMENT, std::string(kFunction) + ": child " + std::to_string(k) +
                                               " has no schema, array, name or format");
            c.name = c.schema->name;
            if (c.array->offset < 0 || c.array->length < 0 || c.array->n_buffers < 0 ||
                c.array->length - array->offset < array->length ||
                (c.array->n_buffers > 0 && c.array->buffers == nullptr))
                return bad(NK_E_ARGUMENT, c, "its array is shorter than the batch or malformed");
            c.base = c.array->offset + array->offset;
            columns_.push_back(c);
        }
        // A null row of the struct itself cannot be classified.
        if (array->null_count != 0 && array->buffers != nullptr && array->buffers[0] != nullptr) {
            const auto* bits = static_cast<const std::uint8_t*>(array->buffers[0]);
            for (std::size_t i = 0; i < n_; ++i) {
                const std::uint64_t at = std::uint64_t(array->offset) + i;
                if (((bits[at >> 3] >> (at & 7)) & 1) == 0)
                    return fail(NK_E_ARGUMENT, std::string(kFunction) + ": row " + std::to_string(i) +
                                                   " of the batch is null");
            }
        }
        return NK_OK;
    }

    std::size_t n() const noexcept { return n_; }

    // The column named `name`, or nullptr.
    nk_status find(const char* name, const Column** out) const {
        *out = nullptr;
        for (const Column& c : columns_) {
            if (std::strcmp(c.name, name) != 0) continue;
            if (*out != nullptr)
                return fail(NK_E_ARGUMENT, std::string(kFunction) + ": two columns are named '" +
                                               name + "'");
            *out = &c;
        }
        return NK_OK;
    }

    nk_status require(const char* name, const Column** out) const {
        nk_status s = find(name, out);
        if (s == NK_OK && *out == nullptr)
            return fail(NK_E_ARGUMENT, std::string(kFunction) + ": missing column '" + name +
                                           "'; a flow batch needs src_ip, dst_ip, src_port, "
                                           "dst_port, protocol");
        return s;
    }

    // Row `i` of the batch is null in `c`.
    bool null_at(const Column& c, std::size_t i) const noexcept {
        if (c.array->null_count == 0 || c.array->n_buffers < 1 || c.array->buffers[0] == nullptr)
            return false;
        const auto* bits = static_cast<const std::uint8_t*>(c.array->buffers[0]);
        const std::uint64_t at = std::uint64_t(c.base) + i;
        return ((bits[at >> 3] >> (at & 7)) & 1) == 0;
    }

    // The first null row, or n().
    std::size_t first_null(const Column& c) const noexcept {
        if (c.array->null_count == 0 || c.array->n_buffers < 1 || c.array->buffers[0] == nullptr)
            return n_;
        for (std::size_t i = 0; i < n_; ++i)
            if (null_at(c, i)) return i;
        return n_;
    }

    nk_status no_nulls(const Column& c) const {
        const std::size_t row = first_null(c);
        if (row != n_) return bad(NK_E_ARGUMENT, c, "row " + std::to_string(row) + " is null");
        return NK_OK;
    }

    // The column's values buffer (buffers[1]) at batch row 0.
    nk_status values(const Column& c, std::size_t width, const void** out) const {
        if (c.schema->dictionary != nullptr || c.array->dictionary != nullptr)
            return bad(NK_E_UNSUPPORTED, c, "dictionary-encoded columns are not read");
        if (c.array->n_buffers != 2)
            return bad(NK_E_ARGUMENT, c, "expected 2 buffers for format \"" +
                                             std::string(c.schema->format) + "\", got " +
                                             std::to_string(c.array->n_buffers));
        const auto* data = static_cast<const std::uint8_t*>(c.array->buffers[1]);
        if (data == nullptr && n_ != 0) return bad(NK_E_ARGUMENT, c, "its values buffer is NULL");
        *out = data == nullptr ? nullptr : data + std::size_t(c.base) * width;
        return NK_OK;
    }

    // An integer column as T: in place when the format is T's and the
    // buffer is aligned, else converted with a range check. `nulls`
    // (optional) receives the null rows as 1 and turns them into 0;
    // without it a null is an error.
    template <typename T>
    nk_status integers(const Column& c, const char* format, const T** out,
                       std::vector<std::uint8_t>* nulls = nullptr) {
        const char* f = c.schema->format;
        if (nulls != nullptr) {
            nulls->assign(n_, 0);
            for (std::size_t i = 0; i < n_; ++i) (*nulls)[i] = null_at(c, i) ? 1 : 0;
        } else if (nk_status s = no_nulls(c); s != NK_OK) {
            return s;
        }
        std::size_t width;
        bool is_signed;
        if (!integer_format(f, &width, &is_signed))
            return bad(NK_E_UNSUPPORTED, c, "expected an integer column, got format \"" +
                                                std::string(f) + "\"");
        const void* data;
        if (nk_status s = values(c, width, &data); s != NK_OK) return s;
        const bool has_nulls =
            nulls != nullptr && std::find(nulls->begin(), nulls->end(), 1) != nulls->end();
        if (std::strcmp(f, format) == 0 && !has_nulls &&
            reinterpret_cast<std::uintptr_t>(data) % alignof(T) == 0) {
            *out = static_cast<const T*>(data);
            return NK_OK;
        }
        std::vector<T>& copy = keep<T>();
        copy.resize(n_);
        const auto* p = static_cast<const std::uint8_t*>(data);
        for (std::size_t i = 0; i < n_; ++i) {
            if (nulls != nullptr && (*nulls)[i]) {
                copy[i] = 0;
                continue;
            }
            bool negative;
            std::uint64_t magnitude;
            read_integer(p + i * width, width, is_signed, &negative, &magnitude);
            const auto most = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
            if (negative || magnitude > most)
                return bad(NK_E_ARGUMENT, c, "row " + std::to_string(i) + " is " +
                                                 (negative ? "-" : "") + std::to_string(magnitude) +
                                                 ", outside 0.." + std::to_string(most));
            copy[i] = static_cast<T>(magnitude);
        }
        *out = copy.data();
        return NK_OK;
    }

    // A time column as int64 ms: a timestamp of any unit (cut toward zero,
    // as Arrow's cast does) or an integer column of ms.
    nk_status milliseconds(const Column& c, const std::int64_t** out) {
        const char* f = c.schema->format;
        if (!starts_with(f, "ts")) {
            std::size_t width;
            bool is_signed;
            if (!integer_format(f, &width, &is_signed))
                return bad(NK_E_UNSUPPORTED, c, "expected a timestamp or int64 ms, got format \"" +
                                                    std::string(f) + "\"");
            if (std::strcmp(f, "L") != 0) return integers_as_int64(c, out);
            const std::uint64_t* u;
            if (nk_status s = integers<std::uint64_t>(c, "L", &u); s != NK_OK) return s;
            for (std::size_t i = 0; i < n_; ++i)
                if (u[i] > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
                    return bad(NK_E_ARGUMENT, c, "row " + std::to_string(i) +
                                                     " is beyond the int64 range of ms since the epoch");
            *out = reinterpret_cast<const std::int64_t*>(u);
            return NK_OK;
        }
        if (std::strlen(f) < 4 || f[3] != ':' || std::strchr("smun", f[2]) == nullptr)
            return bad(NK_E_UNSUPPORTED, c, "unknown timestamp format \"" + std::string(f) + "\"");
        if (nk_status s = no_nulls(c); s != NK_OK) return s;
        const void* data;
        if (nk_status s = values(c, 8, &data); s != NK_OK) return s;
        const char unit = f[2];
        if (unit == 'm' && reinterpret_cast<std::uintptr_t>(data) % alignof(std::int64_t) == 0) {
            *out = static_cast<const std::int64_t*>(data);
            return NK_OK;
        }
        std::vector<std::int64_t>& copy = keep<std::int64_t>();
        copy.resize(n_);
        const auto* p = static_cast<const std::uint8_t*>(data);
        for (std::size_t i = 0; i < n_; ++i) {
            std::int64_t v;
            std::memcpy(&v, p + 8 * i, 8);
            if (unit == 's') {
                if (__builtin_mul_overflow(v, std::int64_t(1000), &v))
                    return bad(NK_E_ARGUMENT, c, "row " + std::to_string(i) +
                                                     " is beyond the int64 range of ms since the epoch");
            } else if (unit == 'u') {
                v /= 1000;
            } else if (unit == 'n') {
                v /= 1000000;
            }
            copy[i] = v;
        }
        *out = copy.data();
        return NK_OK;
    }

    // An address column: uint32 IPv4 (host order) or 16-byte rows.
    nk_status addresses(const Column& c, nkclass::AddressColumn* out) {
        const char* f = c.schema->format;
        if (nk_status s = no_nulls(c); s != NK_OK) return s;
        if (std::strcmp(f, "I") == 0) return integers<std::uint32_t>(c, "I", &out->v4);
        if (std::strcmp(f, "w:16") != 0)
            return bad(NK_E_UNSUPPORTED, c, "expected uint32 IPv4 addresses (\"I\") or 16-byte "
                                            "addresses (\"w:16\"), got format \"" + std::string(f) +
                                                "\" (text addresses are not read here)");
        const void* data;
        if (nk_status s = values(c, 16, &data); s != NK_OK) return s;
        out->v6 = static_cast<const nkclass::ipv6_net_t*>(data);  // bytes: no alignment needed
        return NK_OK;
    }

    // A payload column (binary or large_binary); nulls read as empty.
    nk_status payload(const Column& c, nkclass::BytesColumn* out) {
        const char* f = c.schema->format;
        const bool large = std::strcmp(f, "Z") == 0;
        if (!large && std::strcmp(f, "z") != 0)
            return bad(NK_E_UNSUPPORTED, c, "expected binary (\"z\") or large_binary (\"Z\"), got "
                                            "format \"" + std::string(f) + "\"");
        if (c.schema->dictionary != nullptr || c.array->dictionary != nullptr)
            return bad(NK_E_UNSUPPORTED, c, "dictionary-encoded columns are not read");
        if (c.array->n_buffers != 3)
            return bad(NK_E_ARGUMENT, c, "expected 3 buffers, got " + std::to_string(c.array->n_buffers));
        const auto* offsets_at = static_cast<const std::uint8_t*>(c.array->buffers[1]);
        const auto* data = static_cast<const std::uint8_t*>(c.array->buffers[2]);
        if (offsets_at == nullptr && n_ != 0) return bad(NK_E_ARGUMENT, c, "its offsets buffer is NULL");
        const std::size_t width = large ? 8 : 4;
        offsets_at += std::size_t(c.base) * width;
        std::vector<std::int64_t>& offsets = keep<std::int64_t>();
        offsets.resize(n_ + 1);
        for (std::size_t i = 0; i <= n_ && n_ != 0; ++i) {
            if (large) {
                std::memcpy(&offsets[i], offsets_at + 8 * i, 8);
            } else {
                std::int32_t v;
                std::memcpy(&v, offsets_at + 4 * i, 4);
                offsets[i] = v;
            }
        }
        if (offsets[0] < 0) return bad(NK_E_ARGUMENT, c, "its first offset is below 0");
        for (std::size_t i = 0; i < n_; ++i)
            if (offsets[i + 1] < offsets[i])
                return bad(NK_E_ARGUMENT, c, "row " + std::to_string(i) + " ends before it starts");
        if (data == nullptr && offsets[n_] != offsets[0])
            return bad(NK_E_ARGUMENT, c, "its data buffer is NULL");
        static const std::uint8_t kEmpty[1] = {0};
        if (data == nullptr) data = kEmpty;
        if (first_null(c) != n_) {
            // Null rows become empty: copy the other rows back to back.
            std::vector<std::uint8_t>& bytes = keep<std::uint8_t>();
            std::vector<std::int64_t>& compact = keep<std::int64_t>();
            compact.assign(n_ + 1, 0);
            for (std::size_t i = 0; i < n_; ++i) {
                if (!null_at(c, i))
                    bytes.insert(bytes.end(), data + offsets[i], data + offsets[i + 1]);
                compact[i + 1] = static_cast<std::int64_t>(bytes.size());
            }
            out->data = bytes.empty() ? kEmpty : bytes.data();
            out->offsets = compact.data();
            return NK_OK;
        }
        out->data = data;
        out->offsets = offsets.data();
        return NK_OK;
    }

private:
    static bool integer_format(const char* f, std::size_t* width, bool* is_signed) {
        if (f[0] == '\0' || f[1] != '\0') return false;
        switch (f[0]) {
            case 'c': *width = 1, *is_signed = true; return true;
            case 'C': *width = 1, *is_signed = false; return true;
            case 's': *width = 2, *is_signed = true; return true;
            case 'S': *width = 2, *is_signed = false; return true;
            case 'i': *width = 4, *is_signed = true; return true;
            case 'I': *width = 4, *is_signed = false; return true;
            case 'l': *width = 8, *is_signed = true; return true;
            case 'L': *width = 8, *is_signed = false; return true;
            default: return false;
        }
    }

    // One value in the host's byte order (as the C Data Interface has it).
    template <typename T>
    static T load(const std::uint8_t* p) {
        T v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }

    static void read_integer(const std::uint8_t* p, std::size_t width, bool is_signed,
                             bool* negative, std::uint64_t* magnitude) {
        std::int64_t value = 0;
        std::uint64_t unsigned_value = 0;
        switch (width * 2 + (is_signed ? 1 : 0)) {
            case 3: value = load<std::int8_t>(p); break;
            case 2: unsigned_value = load<std::uint8_t>(p); break;
            case 5: value = load<std::int16_t>(p); break;
            case 4: unsigned_value = load<std::uint16_t>(p); break;
            case 9: value = load<std::int32_t>(p); break;
            case 8: unsigned_value = load<std::uint32_t>(p); break;
            case 17: value = load<std::int64_t>(p); break;
            default: unsigned_value = load<std::uint64_t>(p); break;
        }
        if (!is_signed) {
            *negative = false;
            *magnitude = unsigned_value;
        } else {
            *negative = value < 0;
            *magnitude = value < 0 ? ~static_cast<std::uint64_t>(value) + 1
                                   : static_cast<std::uint64_t>(value);
        }
    }

    nk_status integers_as_int64(const Column& c, const std::int64_t** out) {
        if (nk_status s = no_nulls(c); s != NK_OK) return s;
        std::size_t width = 8;
        bool is_signed = true;
        integer_format(c.schema->format, &width, &is_signed);
        const void* data;
        if (nk_status s = values(c, width, &data); s != NK_OK) return s;
        if (width == 8 && reinterpret_cast<std::uintptr_t>(data) % alignof(std::int64_t) == 0) {
            *out = static_cast<const std::int64_t*>(data);
            return NK_OK;
        }
        std::vector<std::int64_t>& copy = keep<std::int64_t>();
        copy.resize(n_);
        for (std::size_t i = 0; i < n_; ++i) {
            bool negative;
            std::uint64_t magnitude;
            read_integer(static_cast<const std::uint8_t*>(data) + i * width, width, is_signed,
                         &negative, &magnitude);
            copy[i] = negative ? -static_cast<std::int64_t>(magnitude - 1) - 1
                               : static_cast<std::int64_t>(magnitude);
        }
        *out = copy.data();
        return NK_OK;
    }

public:
    // A new buffer of T that lives as long as the batch. Held in deques:
    // adding one keeps references to the earlier ones valid.
    template <typename T>
    std::vector<T>& keep() {
        if constexpr (std::is_same_v<T, std::uint8_t>) return u8_.emplace_back();
        else if constexpr (std::is_same_v<T, std::uint16_t>) return u16_.emplace_back();
        else if constexpr (std::is_same_v<T, std::uint32_t>) return u32_.emplace_back();
        else if constexpr (std::is_same_v<T, std::uint64_t>) return u64_.emplace_back();
        else return i64_.emplace_back();
    }

private:
    std::size_t n_ = 0;
    std::vector<Column> columns_;
    std::deque<std::vector<std::uint8_t>> u8_;
    std::deque<std::vector<std::uint16_t>> u16_;
    std::deque<std::vector<std::uint32_t>> u32_;
    std::deque<std::vector<std::uint64_t>> u64_;
    std::deque<std::vector<std::int64_t>> i64_;
};

nk_status read_columns(Batch& b, nkclass::FlowColumns* cols) {
    cols->n = b.n();
    const Column* c;
    nk_status s;
    if ((s = b.require("src_ip", &c)) != NK_OK || (s = b.addresses(*c, &cols->src_ip)) != NK_OK)
        return s;
    if ((s = b.require("dst_ip", &c)) != NK_OK || (s = b.addresses(*c, &cols->dst_ip)) != NK_OK)
        return s;
    if ((s = b.require("src_port", &c)) != NK_OK ||
        (s = b.integers<std::uint16_t>(*c, "S", &cols->src_port)) != NK_OK)
        return s;
    if ((s = b.require("dst_port", &c)) != NK_OK ||
        (s = b.integers<std::uint16_t>(*c, "S", &cols->dst_port)) != NK_OK)
        return s;
    if ((s = b.require("protocol", &c)) != NK_OK ||
        (s = b.integers<std::uint8_t>(*c, "C", &cols->protocol)) != NK_OK)
        return s;
    for (const char* name : {"src_payload", "dst_payload"}) {
        if ((s = b.find(name, &c)) != NK_OK) return s;
        nkclass::BytesColumn& out = name[0] == 's' ? cols->src_payload : cols->dst_payload;
        if (c != nullptr && (s = b.payload(*c, &out)) != NK_OK) return s;
    }
    for (const char* name : {"ts_start", "ts_end"}) {
        if ((s = b.find(name, &c)) != NK_OK) return s;
        const std::int64_t** out = name[3] == 's' ? &cols->ts_start : &cols->ts_end;
        if (c != nullptr && (s = b.milliseconds(*c, out)) != NK_OK) return s;
    }
    if ((s = b.find("bytes", &c)) != NK_OK) return s;
    if (c != nullptr && (s = b.integers<std::uint64_t>(*c, "L", &cols->bytes)) != NK_OK) return s;
    if ((s = b.find("packets", &c)) != NK_OK) return s;
    if (c != nullptr && (s = b.integers<std::uint64_t>(*c, "L", &cols->packets)) != NK_OK) return s;
    if ((s = b.find("tcp_flags", &c)) != NK_OK) return s;
    if (c != nullptr) {
        std::vector<std::uint8_t> nulls;
        if ((s = b.integers<std::uint8_t>(*c, "C", &cols->tcp_flags, &nulls)) != NK_OK) return s;
        if (cols->packets != nullptr &&
            std::find(nulls.begin(), nulls.end(), 1) != nulls.end()) {
            // A flow without flags cannot be scored: it takes no part in the
            // flow-shape stage (as the Python facade does it).
            std::vector<std::uint64_t> packets(cols->packets, cols->packets + b.n());
            for (std::size_t i = 0; i < b.n(); ++i)
                if (nulls[i]) packets[i] = 0;
            std::vector<std::uint64_t>& kept = b.keep<std::uint64_t>();
            kept = std::move(packets);
            cols->packets = kept.data();
        }
    }
    for (const char* name : {"src_as", "dst_as"}) {
        if ((s = b.find(name, &c)) != NK_OK) return s;
        const std::uint32_t** out = name[0] == 's' ? &cols->src_as : &cols->dst_as;
        if (c != nullptr) {
            std::vector<std::uint8_t> nulls;  // a null AS number is unknown (0)
            if ((s = b.integers<std::uint32_t>(*c, "I", out, &nulls)) != NK_OK) return s;
        }
    }
    return NK_OK;
}

}  // namespace

extern "C" {

nk_status nk_classify_arrow(const nk_classifier* classifier, const ArrowSchema* schema,
                            const ArrowArray* array, nk_pair_cache* cache, const nk_labels* out) {
    if (classifier == nullptr || out == nullptr)
        return fail(NK_E_ARGUMENT, "nk_classify_arrow: classifier and out must not be NULL");
    return nkclass::capi::guarded(kFunction, [&] {
        Batch batch;
        nk_status s = batch.open(schema, array);
        nkclass::FlowColumns cols;
        if (s == NK_OK) s = read_columns(batch, &cols);
        if (s != NK_OK) return s;
        return nkclass::capi::classify_columns(classifier, cols, cache, out, kFunction);
    });
}

}  // extern "C"
