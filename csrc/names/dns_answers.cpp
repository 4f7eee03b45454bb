// DNS response parsing for learned names (see dns_answers.hpp).
#include "nkclass/dns_answers.hpp"

#include <cstring>

#include "nkclass/bytes.hpp"
#include "nkclass/dns_wire.hpp"

namespace nkclass {

namespace {

using bytes::be16;
using bytes::be32;

struct Name {
    char text[kMaxName + 1];
    std::size_t len = 0;
    std::size_t hops = 0;  // compression pointers followed to read it
    bool printable = false;

    bool equals(const char* s, std::size_t n) const noexcept {
        return printable && len == n && std::memcmp(text, s, n) == 0;
    }
};

// Reads the (possibly compressed) name at p[pos]. Returns the offset just
// after the name as written at `pos` (after its first pointer, if any), or
// 0 when the name is malformed: out of bounds, a reserved label type, a
// pointer not strictly before the previous one (which rules out loops), too
// many pointers, or more than 255 wire bytes. `out` gets the dotted,
// lowercased text when every label byte is printable and not a dot.
std::size_t read_name(const std::uint8_t* p, std::size_t n, std::size_t pos, Name* out) noexcept {
    std::size_t i = pos, next = 0, bound = pos, hops = 0, wire = 0, w = 0;
    bool ok = true;
    while (true) {
        if (i >= n) return 0;
        const std::uint8_t l = p[i];
        if ((l & 0xc0) == 0xc0) {
            if (i + 1 >= n) return 0;
            const std::size_t target = (std::size_t(l & 0x3f) << 8) | p[i + 1];
            if (next == 0) next = i + 2;
            if (target >= bound || ++hops > DnsAnswers::kMaxPointers) return 0;
            bound = target;
            i = target;
            continue;
        }
        if (l & 0xc0) return 0;
        if (l == 0) {
            if (next == 0) next = i + 1;
            break;
        }
        if (i + 1 + l > n) return 0;
        wire += l + 1u;
        if (wire > 255) return 0;
        const std::uint8_t* label = p + i + 1;
        if (ok && w + l + 1 <= kMaxName + 1 && bytes::copy_label_lower(out->text + w, label, l)) {
            w += l;
            out->text[w++] = '.';
        } else {
            ok = false;
        }
        i += 1u + l;
    }
    out->len = w > 0 ? w - 1 : 0;  // without the trailing dot
    out->hops = hops;
    out->printable = ok && w > 0;
    if (out->printable) out->text[out->len] = '\0';
    return next;
}

// The question name and the CNAME targets that lead from it, with where
// each starts in the message.
struct Chain {
    Name names[DnsAnswers::kMaxChain];
    std::size_t at[DnsAnswers::kMaxChain];
    std::size_t n = 0;

    void add(const Name& name, std::size_t offset) noexcept {
        names[n] = name;
        at[n++] = offset;
    }
    bool contains(const Name& x) const noexcept {
        if (!x.printable) return false;
        for (std::size_t i = 0; i < n; ++i)
            if (names[i].equals(x.text, x.len)) return true;
        return false;
    }
    // True when p[pos] is a compression pointer straight to where a chain
    // name starts, and read_name would follow it (backward, within the hop
    // limit): the usual form of an answer's owner, known without decoding.
    bool pointed_at(const std::uint8_t* p, std::size_t n_bytes, std::size_t pos) const noexcept {
        if (pos + 1 >= n_bytes || (p[pos] & 0xc0) != 0xc0) return false;
        const std::size_t target = (std::size_t(p[pos] & 0x3f) << 8) | p[pos + 1];
        if (target >= pos) return false;
        for (std::size_t i = 0; i < n; ++i)
            if (at[i] == target && names[i].hops < DnsAnswers::kMaxPointers) return true;
        return false;
    }
};

struct Record {
    std::size_t owner_end = 0;  // offset after the owner name
    std::uint16_t type = 0, klass = 0;
    std::uint32_t ttl = 0;
    std::size_t rdata = 0, rdlength = 0;
};

// Reads the record at p[pos]; `in_chain` says whether its owner is a
// chain name (decoded into `owner` only when it is not plainly a pointer to
// one). Returns false when the record is malformed or runs past the end.
bool read_record(const std::uint8_t* p, std::size_t n, std::size_t pos, const Chain& chain,
                 Name* owner, bool* in_chain, Record* r) noexcept {
    if (chain.pointed_at(p, n, pos)) {
        r->owner_end = pos + 2;
        *in_chain = true;
    } else {
        r->owner_end = read_name(p, n, pos, owner);
        *in_chain = r->owner_end != 0 && chain.contains(*owner);
    }
    if (r->owner_end == 0 || r->owner_end + 10 > n) return false;
    const std::uint8_t* h = p + r->owner_end;
    r->type = be16(h);
    r->klass = be16(h + 2);
    r->ttl = be32(h + 4);
    r->rdlength = be16(h + 8);
    r->rdata = r->owner_end + 10;
    return r->rdata + r->rdlength <= n;
}


}  // namespace

bool parse_dns_answers(const std::uint8_t* p, std::size_t len, bool tcp,
                       DnsAnswers* out) noexcept {
    out->n = 0;
    out->qname_len = 0;
    out->qname[0] = '\0';
    if (p == nullptr || !dns_message(tcp, &p, &len) || len < 12) return false;
    const std::uint16_t flags = be16(p + 2);
    if (!(flags & 0x8000) || ((flags >> 11) & 0xf) != 0 || (flags & 0x000f) != 0) return false;
    if (be16(p + 4) != 1) return false;
    const std::size_t an = be16(p + 6);
    if (an == 0) return false;

    Chain chain;
    Name question;
    std::size_t pos = read_name(p, len, 12, &question);
    if (pos == 0 || pos + 4 > len || !question.printable) return false;
    if ((be16(p + pos + 2) & 0x7fff) != 1) return false;  // class IN
    chain.add(question, 12);
    const std::size_t answers_at = pos + 4;

    // CNAMEs may come in any order: grow the chain until a pass adds none.
    Name owner, target;
    Record r;
    bool in_chain = false;
    for (bool grew = true; grew && chain.n < DnsAnswers::kMaxChain;) {
        grew = false;
        pos = answers_at;
        for (std::size_t k = 0; k < an && read_record(p, len, pos, chain, &owner, &in_chain, &r);
             ++k) {
            pos = r.rdata + r.rdlength;
            if (r.type != 5 || r.klass != 1 || !in_chain) continue;
            const std::size_t end = read_name(p, r.rdata + r.rdlength, r.rdata, &target);
            if (end == 0 || chain.contains(target) || !target.printable) continue;
            chain.add(target, r.rdata);
            grew = true;
            if (chain.n == DnsAnswers::kMaxChain) break;
        }
    }

    pos = answers_at;
    for (std::size_t k = 0; k < an && read_record(p, len, pos, chain, &owner, &in_chain, &r);
         ++k) {
        pos = r.rdata + r.rdlength;
        if (r.klass != 1 || out->n == DnsAnswers::kMaxAddresses) continue;
        const bool a = r.type == 1 && r.rdlength == 4;
        const bool aaaa = r.type == 28 && r.rdlength == 16;
        if (!(a || aaaa) || !in_chain) continue;
        DnsAddressAnswer& x = out->answers[out->n++];
        if (a) {
            x.address = map_ipv4(be32(p + r.rdata));
        } else {
            std::memcpy(x.address.bytes, p + r.rdata, 16);
        }
        x.ttl = (r.ttl & 0x80000000u) ? 0 : r.ttl;
    }
    if (out->n == 0) return false;
    std::memcpy(out->qname, chain.names[0].text, chain.names[0].len + 1);
    out->qname_len = static_cast<std::uint8_t>(chain.names[0].len);
    return true;
}

}  // namespace nkclass
