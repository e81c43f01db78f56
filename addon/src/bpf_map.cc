// Map operations on an fd, with keys and values in Buffers.
//
// These are single fast syscalls, so they run synchronously on the main
// thread. The caller (engine/bpf/map.ts) has checked every Buffer against the
// map's key and value sizes: the kernel copies exactly that many bytes, and
// this file cannot know them without another syscall per operation.
// Each call takes a label naming the map for errors.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>

#include "bpf.h"

namespace ferry {

namespace {

// bpfMapLookup(fd, key, valueOut, label) -> boolean; false when the key is absent.
Napi::Value Lookup(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  auto key = BufferArg(info, 1, "key");
  auto value = BufferArg(info, 2, "value");
  std::string label = StringArg(info, 3);
  int ret = bpf_map_lookup_elem(fd, key.Data(), value.Data());
  if (ret == -ENOENT) return Napi::Boolean::New(info.Env(), false);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_map_lookup_elem", label));
  return Napi::Boolean::New(info.Env(), true);
}

// bpfMapUpdate(fd, key, value, flags, label); flags: BPF_ANY/NOEXIST/EXIST.
Napi::Value Update(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  auto key = BufferArg(info, 1, "key");
  auto value = BufferArg(info, 2, "value");
  uint32_t flags = U32Arg(info, 3, "flags");
  std::string label = StringArg(info, 4);
  int ret = bpf_map_update_elem(fd, key.Data(), value.Data(), flags);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_map_update_elem", label));
  return info.Env().Undefined();
}

// bpfMapDelete(fd, key, label) -> boolean; false when the key was absent.
Napi::Value Delete(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  auto key = BufferArg(info, 1, "key");
  std::string label = StringArg(info, 2);
  int ret = bpf_map_delete_elem(fd, key.Data());
  if (ret == -ENOENT) return Napi::Boolean::New(info.Env(), false);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_map_delete_elem", label));
  return Napi::Boolean::New(info.Env(), true);
}

// bpfMapNextKey(fd, key | null, nextOut, label) -> boolean; false past the
// last key. A null key asks for the first one.
Napi::Value NextKey(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  const void* key = nullptr;
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) key = BufferArg(info, 1, "key").Data();
  auto next = BufferArg(info, 2, "next");
  std::string label = StringArg(info, 3);
  int ret = bpf_map_get_next_key(fd, key, next.Data());
  if (ret == -ENOENT) return Napi::Boolean::New(info.Env(), false);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_map_get_next_key", label));
  return Napi::Boolean::New(info.Env(), true);
}

// bpfMapUpdateBatch(fd, keys, values, count, elemFlags, label) -> count.
// elemFlags: 0 or BPF_F_LOCK (the kernel takes no ANY/NOEXIST/EXIST here).
// On a partial failure the error's detail says how many entries were written.
Napi::Value UpdateBatch(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  auto keys = BufferArg(info, 1, "keys");
  auto values = BufferArg(info, 2, "values");
  uint32_t count = U32Arg(info, 3, "count");
  uint32_t elemFlags = U32Arg(info, 4, "elemFlags");
  std::string label = StringArg(info, 5);
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elemFlags);
  uint32_t done = count;
  int ret = bpf_map_update_batch(fd, keys.Data(), values.Data(), &done, &opts);
  // The kernel reports progress only when it failed part way; a count left
  // untouched means it refused the whole batch up front.
  if (ret < 0)
    Throw(info.Env(), LibbpfFailure(ret, "bpf_map_update_batch", label,
                                    done < count ? std::to_string(done) + " of " + std::to_string(count) +
                                                       " entries written"
                                                 : ""));
  return Napi::Number::New(info.Env(), done);
}

// bpfMapLookupBatch(fd, inBatch | null, outBatch, keysOut, valuesOut, count,
// label) -> {count, done}. Pass the previous outBatch as the next inBatch;
// done is set once the map is exhausted (the kernel's ENOENT).
Napi::Value LookupBatch(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  void* inBatch = nullptr;
  if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) inBatch = BufferArg(info, 1, "inBatch").Data();
  auto outBatch = BufferArg(info, 2, "outBatch");
  auto keys = BufferArg(info, 3, "keys");
  auto values = BufferArg(info, 4, "values");
  uint32_t count = U32Arg(info, 5, "count");
  std::string label = StringArg(info, 6);
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int ret = bpf_map_lookup_batch(fd, inBatch, outBatch.Data(), keys.Data(), values.Data(), &count, &opts);
  if (ret < 0 && ret != -ENOENT) Throw(info.Env(), LibbpfFailure(ret, "bpf_map_lookup_batch", label));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("count", count);
  out.Set("done", ret == -ENOENT);
  return out;
}

// bpfMapInfo(fd, label) -> {id, name, type, keySize, valueSize, maxEntries, flags}
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  std::string label = StringArg(info, 1);
  struct bpf_map_info m = {};
  uint32_t len = sizeof m;
  int ret = bpf_obj_get_info_by_fd(fd, &m, &len);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_obj_get_info_by_fd", label));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("id", m.id);
  out.Set("name", m.name);
  out.Set("type", MapTypeName(m.type));
  out.Set("keySize", m.key_size);
  out.Set("valueSize", m.value_size);
  out.Set("maxEntries", m.max_entries);
  out.Set("flags", m.map_flags);
  return out;
}

// bpfProgInfo(fd, label) -> {id, name, type, tag}
Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  std::string label = StringArg(info, 1);
  struct bpf_prog_info p = {};
  uint32_t len = sizeof p;
  int ret = bpf_obj_get_info_by_fd(fd, &p, &len);
  if (ret < 0) Throw(info.Env(), LibbpfFailure(ret, "bpf_obj_get_info_by_fd", label));
  static const char kHex[] = "0123456789abcdef";
  std::string tag;
  for (unsigned char b : p.tag) {
    tag += kHex[b >> 4];
    tag += kHex[b & 15];
  }
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("id", p.id);
  out.Set("name", p.name);
  out.Set("type", ProgTypeName(p.type));
  out.Set("tag", tag);
  return out;
}

}  // namespace

void InitBpfMap(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfMapLookup", Napi::Function::New(env, Lookup, "bpfMapLookup"));
  exports.Set("bpfMapUpdate", Napi::Function::New(env, Update, "bpfMapUpdate"));
  exports.Set("bpfMapDelete", Napi::Function::New(env, Delete, "bpfMapDelete"));
  exports.Set("bpfMapNextKey", Napi::Function::New(env, NextKey, "bpfMapNextKey"));
  exports.Set("bpfMapUpdateBatch", Napi::Function::New(env, UpdateBatch, "bpfMapUpdateBatch"));
  exports.Set("bpfMapLookupBatch", Napi::Function::New(env, LookupBatch, "bpfMapLookupBatch"));
  exports.Set("bpfMapInfo", Napi::Function::New(env, MapInfo, "bpfMapInfo"));
  exports.Set("bpfProgInfo", Napi::Function::New(env, ProgInfo, "bpfProgInfo"));
  // The kernel's update flags, so TypeScript does not copy uapi numbers.
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("any", static_cast<uint32_t>(BPF_ANY));
  flags.Set("noexist", static_cast<uint32_t>(BPF_NOEXIST));
  flags.Set("exist", static_cast<uint32_t>(BPF_EXIST));
  exports.Set("bpfUpdateFlags", flags);
}

}  // namespace ferry
