/* A config as the run system reads it: parse, then evo_trainer_new with no run folder, which reads and validates
   every section and builds task, policy, algorithm and simulation without running anything. Inputs that name a
   task plugin are skipped (a plugin is code the config asks to load, not data). */
#include "fuzz_util.h"
#include "config_impl.h"
#include "evoc/trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  if (strstr(text, "plugin")) {
    free(text);
    return 0;
  }
  evo_config *c = NULL;
  evo_clear_error();
  evo_status st = evo_config_parse(text, "fuzz.yaml", &c);
  free(text);
  fuzz_check_error(st);
  if (st) return 0;
  evo_trainer *t = NULL;
  FUZZ_CALL(evo_trainer_new(c, NULL, &t));
  evo_trainer_free(t);
  evo_config_free(c);
  return 0;
}
