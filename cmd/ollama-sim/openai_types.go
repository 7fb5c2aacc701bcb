package main

import "encoding/json"

// The bodies of Ollama's OpenAI-compatible API, mirroring
// github.com/ollama/ollama/openai/openai.go (v0.17).

// OpenAIError is the inner object of an OpenAI error body.
type OpenAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   any     `json:"param"`
	Code    *string `json:"code"`
}

// OpenAIErrorResponse is {"error": {...}}.
type OpenAIErrorResponse struct {
	Error OpenAIError `json:"error"`
}

// newOpenAIError is openai.NewError: the type follows the status code.
func newOpenAIError(code int, message string) OpenAIErrorResponse {
	etype := "api_error"
	switch code {
	case 400:
		etype = "invalid_request_error"
	case 404:
		etype = "not_found_error"
	}
	return OpenAIErrorResponse{OpenAIError{Type: etype, Message: message}}
}

// OpenAIMessage is a chat message; content is a string or a list of parts.
type OpenAIMessage struct {
	Role       string `json:"role"`
	Content    any    `json:"content"`
	Reasoning  string `json:"reasoning,omitempty"`
	ToolCalls  []any  `json:"tool_calls,omitempty"`
	Name       string `json:"name,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// StreamOptions is stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatCompletionRequest is the body of POST /v1/chat/completions.
// MaxCompletionTokens is a simulator extension: Ollama v0.17 reads only
// max_tokens; the simulator uses max_completion_tokens when max_tokens is
// absent.
type ChatCompletionRequest struct {
	Model               string          `json:"model"`
	Messages            []OpenAIMessage `json:"messages"`
	Stream              bool            `json:"stream"`
	StreamOptions       *StreamOptions  `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Seed                *int            `json:"seed"`
	Stop                any             `json:"stop"`
	Temperature         *float64        `json:"temperature"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	TopP                *float64        `json:"top_p"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	Tools               []any           `json:"tools"`
	ReasoningEffort     *string         `json:"reasoning_effort,omitempty"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         int             `json:"top_logprobs"`
}

// CompletionRequest is the body of POST /v1/completions.
type CompletionRequest struct {
	Model            string         `json:"model"`
	Prompt           string         `json:"prompt"`
	FrequencyPenalty float32        `json:"frequency_penalty"`
	MaxTokens        *int           `json:"max_tokens"`
	PresencePenalty  float32        `json:"presence_penalty"`
	Seed             *int           `json:"seed"`
	Stop             any            `json:"stop"`
	Stream           bool           `json:"stream"`
	StreamOptions    *StreamOptions `json:"stream_options"`
	Temperature      *float32       `json:"temperature"`
	TopP             float32        `json:"top_p"`
	Suffix           string         `json:"suffix"`
	Logprobs         *int           `json:"logprobs"`
}

// OpenAIEmbedRequest is the body of POST /v1/embeddings.
type OpenAIEmbedRequest struct {
	Input          any    `json:"input"`
	Model          string `json:"model"`
	Dimensions     int    `json:"dimensions,omitempty"`
	EncodingFormat string `json:"encoding_format,omitempty"`
}

// Usage is the token usage object.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Choice is one choice of a chat completion.
type Choice struct {
	Index        int           `json:"index"`
	Message      OpenAIMessage `json:"message"`
	FinishReason *string       `json:"finish_reason"`
}

// ChunkChoice is one choice of a chat completion chunk.
type ChunkChoice struct {
	Index        int           `json:"index"`
	Delta        OpenAIMessage `json:"delta"`
	FinishReason *string       `json:"finish_reason"`
}

// CompleteChunkChoice is one choice of a text completion.
type CompleteChunkChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	FinishReason *string `json:"finish_reason"`
}

// ChatCompletion answers a non-streaming /v1/chat/completions.
type ChatCompletion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint"`
	Choices           []Choice `json:"choices"`
	Usage             Usage    `json:"usage,omitempty"`
}

// ChatCompletionChunk is one SSE event of a streaming /v1/chat/completions.
type ChatCompletionChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
}

// Completion answers a non-streaming /v1/completions.
type Completion struct {
	ID                string                `json:"id"`
	Object            string                `json:"object"`
	Created           int64                 `json:"created"`
	Model             string                `json:"model"`
	SystemFingerprint string                `json:"system_fingerprint"`
	Choices           []CompleteChunkChoice `json:"choices"`
	Usage             Usage                 `json:"usage,omitempty"`
}

// CompletionChunk is one SSE event of a streaming /v1/completions.
type CompletionChunk struct {
	ID                string                `json:"id"`
	Object            string                `json:"object"`
	Created           int64                 `json:"created"`
	Choices           []CompleteChunkChoice `json:"choices"`
	Model             string                `json:"model"`
	SystemFingerprint string                `json:"system_fingerprint"`
	Usage             *Usage                `json:"usage,omitempty"`
}

// OpenAIModel is one model of /v1/models.
type OpenAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ListCompletion answers GET /v1/models.
type ListCompletion struct {
	Object string        `json:"object"`
	Data   []OpenAIModel `json:"data"`
}

// Embedding is one vector of /v1/embeddings; a []float32 or a base64 string.
type Embedding struct {
	Object    string `json:"object"`
	Embedding any    `json:"embedding"`
	Index     int    `json:"index"`
}

// EmbeddingUsage is the usage of /v1/embeddings.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// EmbeddingList answers POST /v1/embeddings.
type EmbeddingList struct {
	Object string         `json:"object"`
	Data   []Embedding    `json:"data"`
	Model  string         `json:"model"`
	Usage  EmbeddingUsage `json:"usage,omitempty"`
}
