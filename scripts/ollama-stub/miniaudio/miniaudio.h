/*
 * A stand-in for miniaudio.h (https://miniaud.io), which Ollama's llama.cpp
 * sources include (tools/mtmd/mtmd-helper.cpp) but the Go module zip of
 * github.com/ollama/ollama leaves out, and Debian does not package.
 *
 * It declares only what mtmd-helper.cpp uses to decode audio, and every
 * decoder call fails with MA_NOT_IMPLEMENTED. Text and image models are
 * unaffected; an audio input is rejected as undecodable.
 *
 * scripts/ollama-image copies this directory to a fixed path and passes it
 * with CGO_CPPFLAGS=-I<that path>.
 */
#ifndef CORRAL_MINIAUDIO_STUB_H
#define CORRAL_MINIAUDIO_STUB_H

#include <stddef.h>
#include <stdint.h>

typedef int ma_result;
typedef uint32_t ma_uint32;
typedef uint64_t ma_uint64;

#define MA_SUCCESS 0
#define MA_NOT_IMPLEMENTED (-29)

typedef enum {
	ma_format_unknown = 0,
	ma_format_u8 = 1,
	ma_format_s16 = 2,
	ma_format_s24 = 3,
	ma_format_s32 = 4,
	ma_format_f32 = 5
} ma_format;

typedef struct {
	ma_format format;
	ma_uint32 channels;
	ma_uint32 sampleRate;
} ma_decoder_config;

typedef struct {
	int unused;
} ma_decoder;

static inline ma_decoder_config ma_decoder_config_init(ma_format format, ma_uint32 channels, ma_uint32 sampleRate)
{
	ma_decoder_config c;
	c.format = format;
	c.channels = channels;
	c.sampleRate = sampleRate;
	return c;
}

static inline ma_result ma_decoder_init_memory(const void *data, size_t size, const ma_decoder_config *config, ma_decoder *decoder)
{
	(void)data;
	(void)size;
	(void)config;
	(void)decoder;
	return MA_NOT_IMPLEMENTED;
}

static inline ma_result ma_decoder_get_length_in_pcm_frames(ma_decoder *decoder, ma_uint64 *length)
{
	(void)decoder;
	if (length) {
		*length = 0;
	}
	return MA_NOT_IMPLEMENTED;
}

static inline ma_result ma_decoder_read_pcm_frames(ma_decoder *decoder, void *frames, ma_uint64 frameCount, ma_uint64 *framesRead)
{
	(void)decoder;
	(void)frames;
	(void)frameCount;
	if (framesRead) {
		*framesRead = 0;
	}
	return MA_NOT_IMPLEMENTED;
}

static inline ma_result ma_decoder_uninit(ma_decoder *decoder)
{
	(void)decoder;
	return MA_SUCCESS;
}

#endif /* CORRAL_MINIAUDIO_STUB_H */
