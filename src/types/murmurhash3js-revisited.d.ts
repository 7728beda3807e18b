declare module 'murmurhash3js-revisited' {
  interface Murmur {
    x86: {
      hash32(bytes: ArrayLike<number>, seed?: number): number | undefined
      hash128(bytes: ArrayLike<number>, seed?: number): string | undefined
    }
    x64: { hash128(bytes: ArrayLike<number>, seed?: number): string | undefined }
    inputValidation: boolean
  }
  const murmur: Murmur
  export default murmur
}
