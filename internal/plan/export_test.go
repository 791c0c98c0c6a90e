package plan

// MaskOf exposes the Secret value mask to the external tests.
var MaskOf = maskOf
