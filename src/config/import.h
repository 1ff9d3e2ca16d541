/*
 * import.h: `airouter config import`: the configuration of a system airouter replaces
 * (a LiteLLM proxy config, the free-model router's config.yaml + models.yaml) converted
 * into airouter configuration YAML. What cannot be carried over becomes a
 * `# not carried over: ...` comment in the output, never a silent loss.
 */
#ifndef AR_CONFIG_IMPORT_H
#define AR_CONFIG_IMPORT_H

#include "core/buf.h"
#include "core/conf.h"

typedef enum ar_import_from {
    AR_IMPORT_LITELLM,         /* LiteLLM proxy config.yaml: model_list, router_settings... */
    AR_IMPORT_FREE_LLM_ROUTER, /* free-llm-router config.yaml (+ models.yaml) */
} ar_import_from_t;

/**
 * Parses the name of a source system: "litellm", "free-llm-router" (also "free-router").
 * @return 0, or -1 when it names none.
 */
int ar_config_import_from(const char *name, ar_import_from_t *out);

/**
 * Converts the file at path into airouter YAML appended to out. models_path is the
 * free-model router's models.yaml; NULL: the `modelsFile` its config.yaml names (relative
 * to that file), and ignored for LiteLLM. Secrets and environment references
 * (`os.environ/NAME`, `${NAME}`) are copied as written, never resolved.
 * @param errors receives "FILE:LINE: message" for each problem of the input (may be NULL).
 * @return 0; AR_EIO when a file cannot be read; AR_EINVAL when the input is not a config
 *         of that system (out is left as it was then).
 */
int ar_config_import(ar_import_from_t from, const char *path, const char *models_path,
                     ar_buf_t *out, ar_strlist_t *errors);

#endif
