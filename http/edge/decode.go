package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// decodeJSON reads the body into v strictly: application/json only (415),
// within the body limit (413), no unknown fields, no trailing data, right
// types (400), then validates v's `validate` tags (400 with one detail per
// failing field).
func decodeJSON(r *http.Request, v any) *requestError {
	return decodeBody(r, v, true)
}

// decodeJSONLenient is decodeJSON that ignores unknown fields, for routes
// that speak someone else's contract (OpenAI's), whose clients send
// parameters Parley has no use for.
func decodeJSONLenient(r *http.Request, v any) *requestError {
	return decodeBody(r, v, false)
}

func decodeBody(r *http.Request, v any, strict bool) *requestError {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return &requestError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedType, message: "Content-Type must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, os.ErrDeadlineExceeded) {
			return jsonError(err)
		}
		return &requestError{status: http.StatusBadRequest, code: CodeBadRequest, message: "body has data after the JSON object"}
	}
	return validateStruct(v)
}

func jsonError(err error) *requestError {
	bad := func(msg string, details ...ErrorDetail) *requestError {
		return &requestError{status: http.StatusBadRequest, code: CodeBadRequest, message: msg, details: details}
	}
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return &requestError{status: http.StatusRequestEntityTooLarge, code: CodeTooLarge, message: fmt.Sprintf("request body is over %d bytes", tooBig.Limit)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &requestError{status: http.StatusRequestTimeout, code: CodeRequestTimeout, message: "the request body did not arrive in time"}
	case errors.Is(err, io.EOF):
		return bad("request body is empty; expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("request body is truncated JSON")
	case errors.As(err, &syntax):
		return bad(fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return bad("request body must be a JSON object")
		}
		return bad("a field has the wrong type", ErrorDetail{Field: field, Message: fmt.Sprintf("must be %s, not %s", jsonType(typeErr.Type), typeErr.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return bad("unknown field", ErrorDetail{Field: field, Message: "is not a field of this request"})
	}
	return bad("malformed JSON: " + err.Error())
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "a " + t.Kind().String()
}

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	return v
}()

func validateStruct(v any) *requestError {
	err := validate.Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return &requestError{status: http.StatusBadRequest, code: CodeBadRequest, message: err.Error()}
	}
	re := &requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid fields"}
	for _, fe := range verrs {
		re.details = append(re.details, ErrorDetail{Field: fe.Field(), Message: fieldMessage(fe)})
	}
	return re
}

func fieldMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "uuid":
		return "must be a UUID such as 5f0c6e3a-8d7b-4b1e-9a53-2f3b1c9d7e10"
	case "min":
		return "must be at least " + fe.Param() + " characters"
	case "max":
		return "must be at most " + fe.Param() + " characters"
	}
	return "fails " + fe.Tag()
}
