// Reading the plain objects that lib/native.ts hands over. lib/ has already validated every
// field, so these only convert; a missing optional field reads as "not set".
#pragma once
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace nk {

inline std::optional<std::string> OptString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) return std::nullopt;
  return v.As<Napi::String>().Utf8Value();
}

inline std::string String(const Napi::Object& o, const char* key) { return OptString(o, key).value_or(""); }

inline std::optional<int64_t> OptInt(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) return std::nullopt;
  return v.As<Napi::Number>().Int64Value();
}

inline std::optional<bool> OptBool(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) return std::nullopt;
  return v.As<Napi::Boolean>().Value();
}

inline std::optional<Napi::Object> OptObject(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) return std::nullopt;
  return v.As<Napi::Object>();
}

inline std::vector<std::string> Strings(const Napi::Value& v) {
  std::vector<std::string> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).As<Napi::String>());
  return out;
}

}  // namespace nk
