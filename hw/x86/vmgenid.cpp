#include "hw/x86/vmgenid.h"

#include <algorithm>

namespace hw::x86 {

base::ErrorOr<VmGenId::Id> VmGenId::draw() {
  if (!m_entropy) return base::fail(base::Error("vmgenid: no entropy source"));
  Id id{};
  auto filled = m_entropy->fill(id);
  if (!filled.ok()) return base::fail(filled.error().with_context("vmgenid: drawing a generation ID"));
  return id;
}

base::ErrorOr<void> VmGenId::publish() {
  if (!m_memory.write(kAddress, m_id))
    return base::fail(base::Error("vmgenid: guest RAM does not reach its address (0xff000)"));
  return {};
}

base::ErrorOr<void> VmGenId::start() {
  m_id = TRY(draw());
  return publish();
}

void VmGenId::save_state(StateWriter& out) {
  out.bytes(m_id);
}

base::ErrorOr<void> VmGenId::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, "vmgenid"));
  const std::vector<uint8_t> saved = in.bytes(kSize);
  if (saved.size() != kSize) in.fail();
  TRY(in.finish("vmgenid"));
  // A source that repeats itself (a broken or replayed rng backend) must not hand the copy the
  // snapshot's ID: the guest would see no change and skip its reseed.
  Id fresh{};
  for (int tries = 0;; ++tries) {
    fresh = TRY(draw());
    if (!std::equal(fresh.begin(), fresh.end(), saved.begin())) break;
    if (tries == 3)
      return base::fail(base::Error("vmgenid: the entropy source keeps returning the saved ID"));
  }
  m_id = fresh;
  TRY(publish());
  if (m_irq) m_irq->pulse();
  return {};
}

}  // namespace hw::x86
