#pragma once
// Where this checkout and its build lie, for the tests: absolute paths, no trailing '/'.
//   LATENT_SOURCE_DIR  the checkout (models/demo, bench/data, real source files)
//   LATENT_TEST_DATA   LATENT_SOURCE_DIR + "/tests/data" (golden checkpoints, tokenizers, fixtures)
//   LATENT_BIN_DIR     the build's bin/ (latent, latentd)
// Each is a const char* from one generated translation unit (tests/test_paths.cpp.in, configured into
// <build>/generated/tests/), never a -D definition: a compile command holding the checkout's absolute path misses
// ccache's direct mode (and, where the macro is used, compiles anew) in a clone at another path - CI's fresh
// clone. Only that one small file is compiled per checkout.
namespace latent::test_paths {
const char* source_dir();
const char* test_data();
const char* bin_dir();
}  // namespace latent::test_paths

#define LATENT_SOURCE_DIR (::latent::test_paths::source_dir())
#define LATENT_TEST_DATA (::latent::test_paths::test_data())
#define LATENT_BIN_DIR (::latent::test_paths::bin_dir())
