// The one place the project imports TensorFlow.js from, so every module shares one engine (and
// the backend initBackend picks). tfjs-node(-gpu), when present, registers its backend on this
// same engine; nothing else should import '@tensorflow/tfjs' directly.
export * from '@tensorflow/tfjs';
