#include "codec/rans.h"

#include "common/error.h"
#include "common/thread_pool.h"

#include <algorithm>
#include <cstring>
#include <memory>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::codec {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 24;  // version, probBits, lanes, reserved, segSymbols, symbols, segments, tableBytes
constexpr std::size_t kStateBytes = 4 * kLanes;

template <typename T>
void put(std::vector<std::byte>& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::byte>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xFF));
}

template <typename T>
T get(const std::byte* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}

void pad4(std::vector<std::byte>& out) {
  while (out.size() % 4) out.push_back(std::byte{0});
}

// One segment: 32 final encoder states, then the renormalization words in the order the decoder reads them.
void encodeSegment(const std::uint8_t* sym, std::size_t count, const FrequencyTable& t, std::vector<std::byte>& out) {
  std::uint32_t x[kLanes];
  std::fill(std::begin(x), std::end(x), kRansLow);
  std::vector<std::uint16_t> words;
  words.reserve(count / 2 + 16);
  for (std::size_t i = count; i-- > 0;) {
    const std::uint32_t s = sym[i], f = t.freq[s];
    std::uint32_t v = x[i % kLanes];
    if (static_cast<std::uint64_t>(v) >= (static_cast<std::uint64_t>(f) << (32 - kProbBits))) {
      words.push_back(static_cast<std::uint16_t>(v & 0xFFFF));
      v >>= 16;
    }
    x[i % kLanes] = ((v / f) << kProbBits) + (v % f) + t.cum[s];
  }
  out.clear();
  out.reserve(kStateBytes + 2 * words.size() + 2);
  for (auto v : x) put<std::uint32_t>(out, v);
  for (auto it = words.rbegin(); it != words.rend(); ++it) put<std::uint16_t>(out, *it);
  pad4(out);
}

// Decoding looks up the symbol of a slot (one byte per slot: 16 KiB, in L1 / GPU shared memory), then the
// symbol's frequency and cumulative frequency packed as freq | cum << 16.
struct DecodeTable {
  alignas(64) std::uint8_t symbol[kProbScale + 4];  // +4: a 32-bit gather at the last slot stays inside
  alignas(64) std::uint32_t freqCum[256];
  explicit DecodeTable(const FrequencyTable& t) {
    std::fill(std::begin(symbol), std::end(symbol), std::uint8_t{0});
    for (int s = 0; s < 256; ++s) {
      freqCum[s] = t.freq[s] | (t.cum[s] << 16);
      std::fill(symbol + t.cum[s], symbol + t.cum[s] + t.freq[s], static_cast<std::uint8_t>(s));
    }
  }
};

struct SegmentView {
  std::uint32_t x[kLanes];
  const std::byte* words;  // u16 little-endian
  std::size_t nWords;
  std::size_t count;
};

SegmentView openSegment(const RansStreamInfo& info, std::span<const std::byte> stream, std::uint32_t seg,
                        const std::string& label) {
  const std::size_t begin = info.dataOffset + info.segmentBegin(seg), end = info.dataOffset + info.segmentEnd(seg);
  if (end - begin < kStateBytes) fail(Errc::Corrupt, "{}: rANS segment {} is too short", label, seg);
  SegmentView v;
  for (int l = 0; l < kLanes; ++l) v.x[l] = get<std::uint32_t>(stream.data() + begin + 4 * l);
  v.words = stream.data() + begin + kStateBytes;
  v.nWords = (end - begin - kStateBytes) / 2;
  const std::uint64_t first = static_cast<std::uint64_t>(seg) * info.segmentSymbols;
  v.count = static_cast<std::size_t>(std::min<std::uint64_t>(info.segmentSymbols, info.symbols - first));
  return v;
}

// Decodes symbols [from, v.count) lane by lane with bounds-checked reads; finishes with the integrity check.
void finishScalar(SegmentView& v, std::size_t from, std::size_t wordPos, const DecodeTable& dt, std::uint8_t* out,
                  std::uint32_t seg, const std::string& label) {
  for (std::size_t i = from; i < v.count; ++i) {
    std::uint32_t& x = v.x[i % kLanes];
    const std::uint32_t slot = x & (kProbScale - 1);
    const std::uint8_t s = dt.symbol[slot];
    const std::uint32_t fc = dt.freqCum[s];
    out[i] = s;
    x = (fc & 0xFFFF) * (x >> kProbBits) + slot - (fc >> 16);
    if (x < kRansLow) {
      if (wordPos >= v.nWords) fail(Errc::Corrupt, "{}: rANS segment {} runs past its data", label, seg);
      x = (x << 16) | get<std::uint16_t>(v.words + 2 * wordPos++);
    }
  }
  // The encoder started every lane at kRansLow and used every word: anything else means corruption.
  const bool statesOk = std::all_of(std::begin(v.x), std::end(v.x), [](std::uint32_t x) { return x == kRansLow; });
  if (!statesOk || v.nWords - wordPos > 1)
    fail(Errc::Corrupt, "{}: rANS segment {} fails its integrity check", label, seg);
}

#ifdef __AVX2__
struct RenormLut {
  alignas(32) std::uint32_t idx[256][8];
  RenormLut() {
    for (int m = 0; m < 256; ++m)
      for (int i = 0; i < 8; ++i) idx[m][i] = static_cast<std::uint32_t>(__builtin_popcount(m & ((1 << i) - 1)));
  }
};
const RenormLut kLut;

// One decode step of all 32 lanes (4 vectors of 8). The state updates of the four vectors are independent, so
// their table gathers overlap; only then are the refill words handed out, in lane order, from the shared stream.
inline void decodeStep(__m256i x[4], const DecodeTable& dt, const std::byte*& wp, std::uint8_t* out) {
  const __m256i low16 = _mm256_set1_epi32(0xFFFF), slotMask = _mm256_set1_epi32(kProbScale - 1);
  __m256i sym[4], need[4];
  int mask[4];
  for (int v = 0; v < 4; ++v) {
    const __m256i slot = _mm256_and_si256(x[v], slotMask);
    sym[v] = _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(dt.symbol), slot, 1),
                              _mm256_set1_epi32(0xFF));
    const __m256i fc = _mm256_i32gather_epi32(reinterpret_cast<const int*>(dt.freqCum), sym[v], 4);
    x[v] = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_and_si256(fc, low16), _mm256_srli_epi32(x[v], kProbBits)),
                            _mm256_sub_epi32(slot, _mm256_srli_epi32(fc, 16)));
    need[v] = _mm256_cmpeq_epi32(_mm256_srli_epi32(x[v], 16), _mm256_setzero_si256());
    mask[v] = _mm256_movemask_ps(_mm256_castsi256_ps(need[v]));
  }
  int offset = 0;
  for (int v = 0; v < 4; ++v) {
    const __m256i words = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + 2 * offset)));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kLut.idx[mask[v]]));
    const __m256i refill = _mm256_or_si256(_mm256_slli_epi32(x[v], 16), _mm256_permutevar8x32_epi32(words, perm));
    x[v] = _mm256_blendv_epi8(x[v], refill, need[v]);
    offset += __builtin_popcount(static_cast<unsigned>(mask[v]));
  }
  wp += 2 * offset;
  const __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(sym[0], sym[1]), _mm256_packus_epi32(sym[2], sym[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
#endif

void decodeSegment(const RansStreamInfo& info, std::span<const std::byte> stream, std::uint32_t seg,
                   std::uint8_t* out, const DecodeTable& dt, const std::string& label, bool simd) {
  SegmentView v = openSegment(info, stream, seg, label);
  std::size_t i = 0, wordPos = 0;
#ifdef __AVX2__
  if (simd) {
    __m256i x[4];
    for (int k = 0; k < 4; ++k) x[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v.x + 8 * k));
    const std::byte* wp = v.words;
    const std::byte* safeEnd = v.words + 2 * v.nWords;  // a step reads at most 32 words (+ 8 of look-ahead)
    while (i + kLanes <= v.count && safeEnd - wp >= 2 * (kLanes + 8)) {
      decodeStep(x, dt, wp, out + i);
      i += kLanes;
    }
    for (int k = 0; k < 4; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(v.x + 8 * k), x[k]);
    wordPos = static_cast<std::size_t>(wp - v.words) / 2;
  }
#else
  (void)simd;
#endif
  finishScalar(v, i, wordPos, dt, out, seg, label);
}

}  // namespace

std::uint32_t chooseSegmentSymbols(std::uint64_t rowLength, std::uint32_t target) {
  if (rowLength == 0) return target;
  if (rowLength >= target) return static_cast<std::uint32_t>(std::min<std::uint64_t>(rowLength, 1u << 30));
  return static_cast<std::uint32_t>((target / rowLength) * rowLength);
}

std::uint32_t RansStreamInfo::segmentEnd(std::uint32_t i) const { return get<std::uint32_t>(segmentEnds.data() + 4 * i); }

std::vector<std::byte> ransEncode(std::span<const std::uint8_t> symbols, const FrequencyTable& table,
                                  std::uint32_t segmentSymbols, ThreadPool* pool) {
  if (segmentSymbols == 0) fail(Errc::InvalidArgument, "rANS: segment size must be positive");
  const std::uint64_t n = symbols.size();
  const std::uint64_t segments64 = (n + segmentSymbols - 1) / segmentSymbols;
  if (segments64 > UINT32_MAX) fail(Errc::InvalidArgument, "rANS: too many segments");
  const auto segments = static_cast<std::uint32_t>(segments64);
  for (auto s : symbols)
    if (!table.freq[s]) fail(Errc::InvalidArgument, "rANS: symbol {} has no frequency in the table", s);

  std::vector<std::vector<std::byte>> parts(segments);
  auto encodeOne = [&](std::size_t i) {
    const std::uint64_t first = i * static_cast<std::uint64_t>(segmentSymbols);
    encodeSegment(symbols.data() + first, static_cast<std::size_t>(std::min<std::uint64_t>(segmentSymbols, n - first)),
                  table, parts[i]);
  };
  if (pool) pool->parallelFor(segments, encodeOne);
  else for (std::size_t i = 0; i < segments; ++i) encodeOne(i);

  std::vector<std::byte> out;
  std::vector<std::byte> tableBytes;
  table.serialize(tableBytes);
  put<std::uint8_t>(out, kVersion);
  put<std::uint8_t>(out, kProbBits);
  put<std::uint8_t>(out, kLanes);
  put<std::uint8_t>(out, 0);
  put<std::uint32_t>(out, segmentSymbols);
  put<std::uint64_t>(out, n);
  put<std::uint32_t>(out, segments);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(tableBytes.size()));
  out.insert(out.end(), tableBytes.begin(), tableBytes.end());
  pad4(out);
  std::uint64_t end = 0;
  for (const auto& p : parts) {
    end += p.size();
    if (end > UINT32_MAX) fail(Errc::InvalidArgument, "rANS: stream larger than 4 GiB");
    put<std::uint32_t>(out, static_cast<std::uint32_t>(end));
  }
  std::size_t total = out.size();
  for (const auto& p : parts) total += p.size();
  out.reserve(total);
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

RansStreamInfo ransParse(std::span<const std::byte> s, const std::string& label) {
  if (s.size() < kHeaderBytes) fail(Errc::Corrupt, "{}: rANS stream truncated ({} bytes)", label, s.size());
  RansStreamInfo info;
  const auto version = get<std::uint8_t>(s.data()), probBits = get<std::uint8_t>(s.data() + 1),
             lanes = get<std::uint8_t>(s.data() + 2);
  if (version != kVersion) fail(Errc::Unsupported, "{}: rANS stream version {} (this build reads {})", label, version, kVersion);
  if (probBits != kProbBits || lanes != kLanes)
    fail(Errc::Corrupt, "{}: rANS stream has {} probability bits and {} lanes (expected {} and {})", label, probBits,
         lanes, kProbBits, kLanes);
  info.segmentSymbols = get<std::uint32_t>(s.data() + 4);
  info.symbols = get<std::uint64_t>(s.data() + 8);
  info.segments = get<std::uint32_t>(s.data() + 16);
  const auto tableBytes = get<std::uint32_t>(s.data() + 20);
  if (info.segmentSymbols == 0) fail(Errc::Corrupt, "{}: rANS segment size is 0", label);
  if (info.symbols / info.segmentSymbols + (info.symbols % info.segmentSymbols != 0) != info.segments)
    fail(Errc::Corrupt, "{}: rANS stream declares {} segments for {} symbols of {} per segment", label, info.segments,
         info.symbols, info.segmentSymbols);
  if (tableBytes > s.size() - kHeaderBytes) fail(Errc::Corrupt, "{}: frequency table truncated", label);
  const std::size_t used = FrequencyTable::deserialize(s.subspan(kHeaderBytes, tableBytes), info.table, label);
  if (used != tableBytes) fail(Errc::Corrupt, "{}: frequency table size mismatch", label);
  if (info.symbols > 0 && info.table.presentSymbols() == 0) fail(Errc::Corrupt, "{}: empty frequency table", label);
  const std::size_t index = (kHeaderBytes + tableBytes + 3) / 4 * 4;
  if (index > s.size() || (s.size() - index) / 4 < info.segments)
    fail(Errc::Corrupt, "{}: rANS segment index truncated", label);
  info.segmentEnds = s.subspan(index, 4ull * info.segments);
  info.dataOffset = index + 4ull * info.segments;
  std::uint32_t prev = 0;
  for (std::uint32_t i = 0; i < info.segments; ++i) {
    const std::uint32_t e = info.segmentEnd(i);
    if (e < prev + kStateBytes || e > s.size() - info.dataOffset)
      fail(Errc::Corrupt, "{}: rANS segment {} lies outside the stream", label, i);
    prev = e;
  }
  return info;
}

RansStreamInfo ransParseExpecting(std::span<const std::byte> stream, std::uint64_t symbols, const std::string& label) {
  RansStreamInfo info = ransParse(stream, label);
  if (info.symbols != symbols)
    fail(Errc::Corrupt, "{}: rANS stream holds {} symbols, expected {}", label, info.symbols, symbols);
  return info;
}

void ransDecodeSegment(const RansStreamInfo& info, std::span<const std::byte> stream, std::uint32_t segment,
                       std::uint8_t* out, const std::string& label) {
  const DecodeTable dt(info.table);
  decodeSegment(info, stream, segment, out, dt, label, true);
}

void ransDecodeSegmentScalar(const RansStreamInfo& info, std::span<const std::byte> stream, std::uint32_t segment,
                             std::uint8_t* out, const std::string& label) {
  const DecodeTable dt(info.table);
  decodeSegment(info, stream, segment, out, dt, label, false);
}

void ransDecode(std::span<const std::byte> stream, std::span<std::uint8_t> out, const std::string& label,
                ThreadPool* pool) {
  const RansStreamInfo info = ransParseExpecting(stream, out.size(), label);
  const auto dt = std::make_unique<DecodeTable>(info.table);
  auto one = [&](std::size_t i) {
    decodeSegment(info, stream, static_cast<std::uint32_t>(i), out.data() + i * info.segmentSymbols, *dt, label, true);
  };
  if (pool) pool->parallelFor(info.segments, one);
  else for (std::size_t i = 0; i < info.segments; ++i) one(i);
}

}  // namespace eq::codec
