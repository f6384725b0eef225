"""The test suite. `WAIT_S` is the one limit for every condition a test waits for (a model released, a thread
ended, a step reached): long enough for the busiest machine, reached only when the awaited thing never happens, so
a test's verdict never depends on how fast the machine is."""

WAIT_S = 300

# a hub option set whose chat model runs on transformers on a CPU (neither OpenVINO GenAI nor CTranslate2): for the
# tests that read the transformers model or hook its forward pass
TRANSFORMERS_CHAT = {"DEMOHUB_LLM_CHAT_OPENVINO_GENAI": "0", "DEMOHUB_LLM_CHAT_CTRANSLATE2": "0"}
