package gemini

import "encoding/json"

// This file holds the subset of the Gemini API (v1beta) wire format the
// adapter reads and writes. Field names and shapes follow Google's REST
// reference (ai.google.dev/api): GenerateContentRequest/Response,
// EmbedContentRequest/Response, BatchEmbedContentsRequest/Response and the
// google.rpc.Status error envelope. Unknown fields in answers are ignored.

// generateRequest is the body of models.generateContent and
// models.streamGenerateContent.
type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

// content is a Content: a role ("user" or "model"; absent in
// systemInstruction) and its parts.
type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

// part is a Part. Exactly one data field is set. Thought marks a thought
// summary in answers; ThoughtSignature is the opaque, base64 signature
// Gemini attaches to parts of thinking models' answers.
type part struct {
	Text             string            `json:"text,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	Thought          bool              `json:"thought,omitempty"`
	ThoughtSignature string            `json:"thoughtSignature,omitempty"`
}

type blob struct {
	MIMEType string `json:"mimeType"`
	Data     string `json:"data"`
}

type fileData struct {
	MIMEType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

// functionCall is a FunctionCall. Args is a JSON object (a
// google.protobuf.Struct); ID is optional and not used by the Gemini API for
// generateContent today.
type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// functionResponse is a FunctionResponse. Response must be a JSON object;
// Google documents the "output" and "error" keys for a function's result and
// failure, and treats the whole object as the output otherwise.
type functionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
}

// functionDeclaration uses parametersJsonSchema, the field that accepts a
// JSON Schema (as OpenAI clients write it, additionalProperties and all),
// rather than parameters, which accepts only Google's OpenAPI 3.0 subset.
type functionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type generationConfig struct {
	StopSequences      []string        `json:"stopSequences,omitempty"`
	ResponseMIMEType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	CandidateCount     *int            `json:"candidateCount,omitempty"`
	MaxOutputTokens    *int            `json:"maxOutputTokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	Seed               *int64          `json:"seed,omitempty"`
	PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
}

// generateResponse is a GenerateContentResponse: the whole answer of
// generateContent, or one chunk of streamGenerateContent?alt=sse. Error is
// not part of the message; it is the google.rpc.Status envelope Google sends
// instead when a stream fails after it started.
type generateResponse struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback"`
	UsageMetadata  *usageMetadata  `json:"usageMetadata"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
	Error          *statusBody     `json:"error"`
}

type candidate struct {
	Content      *content `json:"content"`
	FinishReason string   `json:"finishReason"`
	Index        int      `json:"index"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

// usageMetadata is UsageMetadata. promptTokenCount includes
// cachedContentTokenCount; thoughtsTokenCount is not part of
// candidatesTokenCount but is billed as output; toolUsePromptTokenCount
// (tool results such as search grounding fed back to the model) is billed as
// input and is not part of promptTokenCount.
type usageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
}

// errorEnvelope is Google's error body: {"error": google.rpc.Status}.
type errorEnvelope struct {
	Error *statusBody `json:"error"`
}

// statusBody is google.rpc.Status as Google's JSON APIs render it: the HTTP
// code, a message, the canonical status name and typed details.
type statusBody struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
	Details []statusDetail `json:"details"`
}

// statusDetail is one element of google.rpc.Status.details. Only the fields
// of the detail types the adapter reads are modelled: ErrorInfo.reason and
// RetryInfo.retryDelay.
type statusDetail struct {
	Type       string `json:"@type"`
	Reason     string `json:"reason"`
	RetryDelay string `json:"retryDelay"`
}

// embedRequest is an EmbedContentRequest; as an element of
// batchEmbedContents it must name its model ("models/<name>").
type embedRequest struct {
	Model                string  `json:"model"`
	Content              content `json:"content"`
	OutputDimensionality *int    `json:"outputDimensionality,omitempty"`
}

type batchEmbedRequest struct {
	Requests []embedRequest `json:"requests"`
}

// embedResponse covers both EmbedContentResponse ({"embedding": {...}}) and
// BatchEmbedContentsResponse ({"embeddings": [...]}).
type embedResponse struct {
	Embedding  *contentEmbedding  `json:"embedding"`
	Embeddings []contentEmbedding `json:"embeddings"`
}

type contentEmbedding struct {
	Values json.RawMessage `json:"values"`
}
