// getaddrinfo for fuzz targets that compile configurations (proxy::Snapshot::create resolves
// cluster endpoints): numeric addresses and "localhost" resolve as usual, any other name fails
// at once as it would offline, instead of sending fuzzer-made names to the network's DNS.
#include <dlfcn.h>
#include <netdb.h>

#include <cstring>

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
  using Fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  struct addrinfo h {};
  if (hints) h = *hints;
  if (!node || std::strcmp(node, "localhost") != 0) h.ai_flags |= AI_NUMERICHOST;
  return real(node, service, &h, res);
}
