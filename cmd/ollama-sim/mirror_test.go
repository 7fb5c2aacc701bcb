package main

import "time"

// Independent copies of the JSON shapes in github.com/ollama/ollama
// (api/types.go and openai/openai.go, v0.17.4), every field Ollama can
// write. Tests decode the simulator's answers into them with
// DisallowUnknownFields, so a field Ollama does not have fails the test.

type apiMetrics struct {
	TotalDuration      time.Duration `json:"total_duration,omitempty"`
	LoadDuration       time.Duration `json:"load_duration,omitempty"`
	PromptEvalCount    int           `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration time.Duration `json:"prompt_eval_duration,omitempty"`
	EvalCount          int           `json:"eval_count,omitempty"`
	EvalDuration       time.Duration `json:"eval_duration,omitempty"`
}

type apiMessage struct {
	Role       string   `json:"role"`
	Content    string   `json:"content"`
	Thinking   string   `json:"thinking,omitempty"`
	Images     [][]byte `json:"images,omitempty"`
	ToolCalls  []any    `json:"tool_calls,omitempty"`
	ToolName   string   `json:"tool_name,omitempty"`
	ToolCallID string   `json:"tool_call_id,omitempty"`
}

type apiChatResponse struct {
	Model       string     `json:"model"`
	RemoteModel string     `json:"remote_model,omitempty"`
	RemoteHost  string     `json:"remote_host,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	Message     apiMessage `json:"message"`
	Done        bool       `json:"done"`
	DoneReason  string     `json:"done_reason,omitempty"`
	DebugInfo   any        `json:"_debug_info,omitempty"`
	Logprobs    []any      `json:"logprobs,omitempty"`
	apiMetrics
}

type apiGenerateResponse struct {
	Model       string    `json:"model"`
	RemoteModel string    `json:"remote_model,omitempty"`
	RemoteHost  string    `json:"remote_host,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Response    string    `json:"response"`
	Thinking    string    `json:"thinking,omitempty"`
	Done        bool      `json:"done"`
	DoneReason  string    `json:"done_reason,omitempty"`
	Context     []int     `json:"context,omitempty"`
	apiMetrics
	ToolCalls []any `json:"tool_calls,omitempty"`
	DebugInfo any   `json:"_debug_info,omitempty"`
	Logprobs  []any `json:"logprobs,omitempty"`
}

type apiErrorBody struct {
	Error string `json:"error"`
}

type apiModelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
	ContextLength     int      `json:"context_length,omitempty"`
	EmbeddingLength   int      `json:"embedding_length,omitempty"`
}

type apiListModel struct {
	Name         string          `json:"name"`
	Model        string          `json:"model"`
	RemoteModel  string          `json:"remote_model,omitempty"`
	RemoteHost   string          `json:"remote_host,omitempty"`
	ModifiedAt   time.Time       `json:"modified_at"`
	Size         int64           `json:"size"`
	Digest       string          `json:"digest"`
	Details      apiModelDetails `json:"details,omitempty"`
	Capabilities []string        `json:"capabilities,omitempty"`
}

type apiListResponse struct {
	Models []apiListModel `json:"models"`
}

type apiProcessModel struct {
	Name          string          `json:"name"`
	Model         string          `json:"model"`
	Size          int64           `json:"size"`
	Digest        string          `json:"digest"`
	Details       apiModelDetails `json:"details,omitempty"`
	ExpiresAt     time.Time       `json:"expires_at"`
	SizeVRAM      int64           `json:"size_vram"`
	ContextLength int             `json:"context_length"`
}

type apiProcessResponse struct {
	Models []apiProcessModel `json:"models"`
}

type apiShowResponse struct {
	License       string          `json:"license,omitempty"`
	Modelfile     string          `json:"modelfile,omitempty"`
	Parameters    string          `json:"parameters,omitempty"`
	Template      string          `json:"template,omitempty"`
	System        string          `json:"system,omitempty"`
	Renderer      string          `json:"renderer,omitempty"`
	Parser        string          `json:"parser,omitempty"`
	Details       apiModelDetails `json:"details,omitempty"`
	Messages      []apiMessage    `json:"messages,omitempty"`
	RemoteModel   string          `json:"remote_model,omitempty"`
	RemoteHost    string          `json:"remote_host,omitempty"`
	ModelInfo     map[string]any  `json:"model_info"`
	ProjectorInfo map[string]any  `json:"projector_info,omitempty"`
	Tensors       []any           `json:"tensors,omitempty"`
	Capabilities  []string        `json:"capabilities,omitempty"`
	ModifiedAt    time.Time       `json:"modified_at,omitempty"`
	Requires      string          `json:"requires,omitempty"`
}

type apiProgress struct {
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     int64  `json:"total,omitempty"`
	Completed int64  `json:"completed,omitempty"`
}

type apiEmbedResponse struct {
	Model           string        `json:"model"`
	Embeddings      [][]float32   `json:"embeddings"`
	TotalDuration   time.Duration `json:"total_duration,omitempty"`
	LoadDuration    time.Duration `json:"load_duration,omitempty"`
	PromptEvalCount int           `json:"prompt_eval_count,omitempty"`
}

type apiEmbeddingResponse struct {
	Embedding []float64 `json:"embedding"`
}

type oaiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   any     `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type oaiMessage struct {
	Role       string `json:"role"`
	Content    any    `json:"content"`
	Reasoning  string `json:"reasoning,omitempty"`
	ToolCalls  []any  `json:"tool_calls,omitempty"`
	Name       string `json:"name,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
}

type oaiUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type oaiChatCompletion struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Created           int64  `json:"created"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	Choices           []struct {
		Index        int        `json:"index"`
		Message      oaiMessage `json:"message"`
		FinishReason *string    `json:"finish_reason"`
		Logprobs     any        `json:"logprobs,omitempty"`
	} `json:"choices"`
	Usage     oaiUsage `json:"usage,omitempty"`
	DebugInfo any      `json:"_debug_info,omitempty"`
}

type oaiChatChunk struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Created           int64  `json:"created"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	Choices           []struct {
		Index        int        `json:"index"`
		Delta        oaiMessage `json:"delta"`
		FinishReason *string    `json:"finish_reason"`
		Logprobs     any        `json:"logprobs,omitempty"`
	} `json:"choices"`
	Usage *oaiUsage `json:"usage,omitempty"`
}

type oaiCompletionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	FinishReason *string `json:"finish_reason"`
	Logprobs     any     `json:"logprobs,omitempty"`
}

type oaiCompletion struct {
	ID                string                `json:"id"`
	Object            string                `json:"object"`
	Created           int64                 `json:"created"`
	Model             string                `json:"model"`
	SystemFingerprint string                `json:"system_fingerprint"`
	Choices           []oaiCompletionChoice `json:"choices"`
	Usage             oaiUsage              `json:"usage,omitempty"`
}

type oaiCompletionChunk struct {
	ID                string                `json:"id"`
	Object            string                `json:"object"`
	Created           int64                 `json:"created"`
	Choices           []oaiCompletionChoice `json:"choices"`
	Model             string                `json:"model"`
	SystemFingerprint string                `json:"system_fingerprint"`
	Usage             *oaiUsage             `json:"usage,omitempty"`
}

type oaiModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type oaiModelList struct {
	Object string     `json:"object"`
	Data   []oaiModel `json:"data"`
}

type oaiEmbeddingList struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string `json:"object"`
		Embedding any    `json:"embedding"`
		Index     int    `json:"index"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage,omitempty"`
}
